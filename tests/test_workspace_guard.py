"""Nothing domainfit did not create is deleted or overwritten; one lock per workspace; errors are one line.

Each destructive path that once lost user data has a test here: ``split --out``
onto the data, above it, or onto a non-empty folder; ``--workspace`` on a
user's folder with a ``train/`` (``eval/``, ``report/``) sub-folder, on the
data folder, inside it or above it. After each refusal every file is still
there, byte for byte.
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.core.errors import UsageError
from domainfit.core.files import staged_dir
from domainfit.core.workspace import MARKER, Workspace, check_output_folder

runner = CliRunner()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) with its SHA-256."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def one_error_line(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ split --out


def test_split_out_onto_the_parent_of_the_data_deletes_nothing(mini_beir, monkeypatch):
    """The reported bug: ``domainfit split data --out ..`` run from inside the folder holding ``data``."""
    parent = mini_beir.parent
    (parent / "notes.txt").write_text("mine\n")
    before = snapshot(parent)
    monkeypatch.chdir(mini_beir)
    result = runner.invoke(app, ["split", ".", "--out", ".."])
    one_error_line(result, "is above the data folder")
    assert snapshot(parent) == before


@pytest.mark.parametrize("target", [".", "sub", "qrels"])
def test_split_out_onto_or_inside_the_data_is_refused(mini_beir, monkeypatch, target):
    before = snapshot(mini_beir)
    monkeypatch.chdir(mini_beir)
    result = runner.invoke(app, ["split", ".", "--out", target])
    one_error_line(result, "the data folder")
    assert snapshot(mini_beir) == before
    assert not (mini_beir / "sub").exists()


def test_split_out_onto_an_existing_user_folder_replaces_nothing(mini_beir, tmp_path):
    mine = tmp_path / "mine"
    (mine / "deep").mkdir(parents=True)
    (mine / "deep" / "thesis.tex").write_text("years of work\n")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["split", str(mini_beir), "--out", str(mine)])
    one_error_line(result, "already exists and is not empty")
    assert snapshot(tmp_path) == before


def test_split_out_into_a_new_or_empty_folder_still_works(mini_beir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new", empty):
        result = runner.invoke(app, ["split", str(mini_beir), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert (out / "corpus.jsonl").is_file() and (out / "qrels").is_dir()


def test_check_output_folder_refuses_a_file(tmp_path, mini_beir):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        check_output_folder(tmp_path / "a-file", mini_beir)


# ------------------------------------------------------------------ --workspace


@pytest.mark.parametrize("sub", ["train", "eval", "report", "bench", "decide"])
def test_a_users_folder_with_a_stage_named_subfolder_is_refused(mini_beir, tmp_path, sub):
    """The reported bug: a user's folder with a ``train/`` (``eval/``, ``report/``) sub-folder was replaced."""
    folder = tmp_path / "project"
    (folder / sub).mkdir(parents=True)
    (folder / sub / "my-notes.md").write_text("do not lose\n")
    before = snapshot(folder)
    for argv in (
        ["decide", str(mini_beir), "--workspace", str(folder)],
        ["report", "--workspace", str(folder)],
    ):
        result = runner.invoke(app, argv)
        one_error_line(result, "was not created by domainfit")
        assert snapshot(folder) == before


@pytest.mark.parametrize("where", ["same", "inside", "above"])
def test_a_workspace_overlapping_the_data_is_refused(mini_beir, where):
    workspace = {"same": mini_beir, "inside": mini_beir / "work", "above": mini_beir.parent}[where]
    before = snapshot(mini_beir.parent)
    result = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(workspace), "--quiet"])
    one_error_line(result, "the data folder")
    assert snapshot(mini_beir.parent) == before
    assert not (mini_beir / "work").exists()


def test_run_refuses_the_data_folder_as_workspace_before_any_stage(mini_beir):
    before = snapshot(mini_beir)
    result = runner.invoke(app, ["run", str(mini_beir), "--workspace", str(mini_beir), "--quiet"])
    one_error_line(result, "is the same as the data folder")
    assert snapshot(mini_beir) == before


def test_a_new_workspace_gets_a_marker_and_is_reused(tmp_path):
    ws = Workspace(tmp_path / "work")
    with ws.lock():
        (ws.root / "bench").mkdir()
    marker = json.loads((tmp_path / "work" / MARKER).read_text())
    assert marker["format_version"] == 1 and marker["created_by"].startswith("domainfit ")
    with ws.lock():  # marked: reused without complaint
        pass


def test_an_empty_folder_becomes_a_workspace(tmp_path):
    (tmp_path / "empty").mkdir()
    ws = Workspace(tmp_path / "empty")
    with ws.lock():
        pass
    assert (tmp_path / "empty" / MARKER).is_file()


def test_a_workspace_of_an_earlier_version_is_adopted_and_marked(tmp_path):
    root = tmp_path / "old-work"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "manifest.json").write_text(json.dumps({"format_version": 1, "stage": "bench", "inputs": {}}))
    (root / "bench" / "metrics.json").write_text("{}")
    (root / "cache" / "embeddings").mkdir(parents=True)
    (root / ".lock").write_text("")
    before = snapshot(root)
    with Workspace(root).lock():
        pass
    after = snapshot(root)
    assert MARKER in after
    assert {k: v for k, v in after.items() if k != MARKER} == before


def test_a_folder_with_a_manifest_but_user_files_is_not_adopted(tmp_path):
    root = tmp_path / "mixed"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "manifest.json").write_text(json.dumps({"stage": "bench"}))
    (root / "paper.pdf").write_bytes(b"%PDF")
    with pytest.raises(UsageError, match="not created by domainfit"), Workspace(root).lock():
        pass
    assert not (root / MARKER).exists()


def test_a_marker_of_a_newer_format_is_refused(tmp_path):
    root = tmp_path / "future"
    root.mkdir()
    (root / MARKER).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(UsageError, match="format_version"), Workspace(root).lock():
        pass


def test_a_file_as_workspace_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"), Workspace(tmp_path / "file").lock():
        pass
    assert (tmp_path / "file").read_text() == "x"


def test_a_failed_first_run_leaves_no_workspace(tmp_path):
    root = tmp_path / "never"
    with pytest.raises(RuntimeError), Workspace(root).lock():
        raise RuntimeError("stage failed")
    assert not root.exists()


# ------------------------------------------------------------------ the lock


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    ws = Workspace(tmp_path / "w")
    with ws.lock():
        with Workspace(tmp_path / "w").lock():  # a stage called by `run` re-enters it
            assert ws.holds_lock()
        assert ws.holds_lock()
    assert not ws.holds_lock()


def _hold(root: str, ready, release) -> None:
    with Workspace(root).lock():
        ready.set()
        release.wait(30)


def test_another_process_is_refused_while_the_lock_is_held(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path / "w"), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(UsageError, match="in use"), Workspace(tmp_path / "w").lock():
            pass
    finally:
        release.set()
        proc.join(30)
    with Workspace(tmp_path / "w").lock():  # free again
        pass


def test_run_holds_one_lock_across_its_stages(mini_beir, tmp_path, monkeypatch):
    """Every stage `run` calls, decide and report included, runs while the run's lock is held."""
    from domainfit.config import load_config
    from domainfit.stages import bench, decide, pipeline, report

    seen: dict[str, bool] = {}
    ws = Workspace(tmp_path / "w")

    def spy(stage, label):
        original = stage.compute

        def wrapped(*args, **kwargs):
            seen[label] = ws.holds_lock()
            return original(*args, **kwargs)

        monkeypatch.setattr(stage, "compute", wrapped)

    spy(bench.BenchStage, "run_bench")
    spy(decide.DecideStage, "run_decide")
    spy(report.ReportStage, "build_report")
    small = {"max_steps": 2, "batch_size": 4, "max_seq_length": 32, "eval_steps": 2, "save_steps": 2}
    cfg = load_config(None, {"bench": {"hybrid": False}, "decide": {}, "train": small, "recipe": {"search": False},
                             "pipeline": {"compress": False}})  # fmt: skip
    monkeypatch.setattr(decide, "probe_cost", lambda *a, **k: None)
    result = pipeline.run_pipeline(mini_beir, ws, cfg)
    assert [s["stage"] for s in result.stages[:2]] == ["plan", "bench"]
    assert seen == {"run_bench": True, "run_decide": True, "build_report": True}
    assert not ws.holds_lock()
    for stage in ("bench", "decide", "report"):
        assert (ws.root / stage / "manifest.json").is_file(), stage


def test_staged_dir_never_leaves_its_temporary_folder(tmp_path):
    final = tmp_path / "stage"
    with pytest.raises(ValueError), staged_dir(final) as tmp:
        (tmp / "half").write_text("x")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ no traceback reaches a user


def test_an_unexpected_error_is_one_line_exit_1(mini_beir, tmp_path, monkeypatch):
    from domainfit.stages import bench

    def boom(*_a, **_k):
        raise KeyError("surprise")

    monkeypatch.setattr(bench, "run_bench", boom)
    monkeypatch.delenv("DOMAINFIT_DEBUG", raising=False)
    result = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(tmp_path / "w"), "-q"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "internal error: KeyError" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(mini_beir, tmp_path, monkeypatch):
    from domainfit.stages import bench

    def boom(*_a, **_k):
        raise KeyError("surprise")

    monkeypatch.setattr(bench, "run_bench", boom)
    monkeypatch.delenv("DOMAINFIT_DEBUG", raising=False)
    result = runner.invoke(app, ["--debug", "bench", str(mini_beir), "--workspace", str(tmp_path / "w"), "-q"])
    assert result.exit_code == 1
    os.environ.pop("DOMAINFIT_DEBUG", None)  # set by --debug for the rest of the process
    assert "Traceback" in result.stderr and "KeyError" in result.stderr


@pytest.mark.parametrize(
    ("code", "exit_code", "fragment"),
    [(errno.ENOSPC, 1, "no space left"), (errno.EACCES, 2, "Permission denied"), (errno.EISDIR, 2, "Is a directory")],
)
def test_operating_system_errors_name_the_path(mini_beir, tmp_path, monkeypatch, code, exit_code, fragment):
    from domainfit.stages import bench

    def fails(*_a, **_k):
        raise OSError(code, os.strerror(code), str(tmp_path / "w" / "bench" / "runs"))

    monkeypatch.setattr(bench, "run_bench", fails)
    monkeypatch.delenv("DOMAINFIT_DEBUG", raising=False)
    result = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(tmp_path / "w"), "-q"])
    assert result.exit_code == exit_code
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(tmp_path / "w" / "bench" / "runs") in lines[0] and fragment in lines[0]


def test_the_installed_script_prints_no_traceback_for_a_folder_where_a_file_is_expected(tmp_path):
    """A real OSError through the console script: the config path is a folder."""
    import subprocess

    (tmp_path / "cfg").mkdir()
    script = Path(sys.executable).with_name("domainfit")
    proc = subprocess.run(
        [str(script), "report", "--workspace", str(tmp_path / "w"), "--config", str(tmp_path / "cfg")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "--config" in proc.stderr and "No such option" in proc.stderr:
        proc = subprocess.run(
            [str(script), "validate", str(tmp_path / "cfg")], capture_output=True, text=True, timeout=120, check=False
        )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_an_import_error_inside_a_stage_is_an_error_not_a_skip(mini_beir, tmp_path, monkeypatch):
    """`run` imports its stages directly; a broken stage module fails the run (exit 1), it is never skipped."""
    import builtins

    from domainfit.config import load_config
    from domainfit.stages import decide, pipeline

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "domainfit.stages.synth":
            raise ImportError("No module named 'some_dependency'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "domainfit.stages.synth", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    monkeypatch.setattr(decide, "probe_cost", lambda *a, **k: None)
    cfg = load_config(None, {"bench": {"hybrid": False}})
    with pytest.raises(ImportError, match="some_dependency"):
        pipeline.run_pipeline(mini_beir, Workspace(tmp_path / "w"), cfg, train_anyway=True)


def test_validate_split_requires_that_split_to_be_judged(mini_beir):
    (mini_beir / "qrels" / "test.tsv").unlink()
    assert runner.invoke(app, ["validate", str(mini_beir)]).exit_code == 0
    result = runner.invoke(app, ["validate", str(mini_beir), "--split", "test"])
    one_error_line(result, "no qrels/test.tsv")
    assert runner.invoke(app, ["validate", str(mini_beir), "--split", "dev"]).exit_code == 0


def test_what_a_killed_stage_left_behind_is_cleaned_up_under_the_lock(tmp_path):
    """A staged folder never swapped in, temporary files, and a swap cut between its two renames."""
    ws = Workspace(tmp_path / "w")
    with ws.lock():
        (ws.root / "eval").mkdir()
    (ws.root / ".bench.abc123.tmp").mkdir()
    (ws.root / ".bench.abc123.tmp" / ".per_query.json.x1.tmp").write_text("half")
    (ws.root / ".domainfit-workspace.q9.tmp").write_text("half")
    (ws.root / "cache" / "embeddings").mkdir(parents=True)
    (ws.root / "cache" / "embeddings" / ".m.npy.z.tmp").write_bytes(b"half")
    (ws.root / "cache" / "embeddings" / "m.npy").write_bytes(b"whole")
    (ws.root / ".train.old.4242").mkdir()  # killed after train/ was moved aside, before the new one came in
    (ws.root / ".train.old.4242" / "result.json").write_text("{}")
    (ws.root / ".eval.old.77").mkdir()  # killed after the swap, before the old copy was removed
    with ws.lock():
        pass
    names = sorted(p.name for p in ws.root.iterdir())
    assert names == [".domainfit-workspace", ".lock", "cache", "eval", "train"]
    assert (ws.root / "train" / "result.json").read_text() == "{}"
    assert [p.name for p in (ws.root / "cache" / "embeddings").iterdir()] == ["m.npy"]
