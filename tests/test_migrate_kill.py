"""SIGKILL ``domainfit migrate backfill`` at random points: nothing lost or duplicated, committed work not redone.

The index is built with the old model (the packaged MiniLM cut to two layers);
``migrate backfill --to`` the full MiniLM then runs through the command line in
a subprocess, in batches of two documents, and is killed ten times: half the
kills at a random time within a whole run's span (most of it start-up), half
right after one to four of the index's commits (so they land among the
backfill's own writes). After every kill: each document is in the table
exactly once with its content hash, its old vector untouched, and its new
vector either absent or the one a clean run writes; production's pointer is
byte for byte what it was; ``versions.json`` parses; every line of the
migration log parses (a torn last line is tolerated, as `read_log` skips it);
the new vectors committed never decrease. A final run embeds exactly the
documents that have no committed new vector and leaves the index as a clean
run does.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import build_mini_dataset, save_shallow_copy
from domainfit.cli import app
from domainfit.data.beir import write_beir
from domainfit.index.backend import open_index
from domainfit.index.versions import read_versions
from domainfit.migrate.log import read_log

CONFIG = """
[eval]
max_seq_length = 64
batch_size = 2

[index]
batch_size = 2

[migrate]
max_seq_length = 64
"""
TRIALS = 10


def _rows(home: Path) -> dict[str, dict[str, object]]:
    """Every row of the table: id → content hash and each version's vector (None when absent)."""
    from domainfit.index.lance import LanceBackend

    store = LanceBackend(home / "lancedb", "mini", read_only=True)
    try:
        columns = [f"vec_{v}" for v in store.versions()]
        rows = store.table.to_arrow().select(["id", "content_hash", *columns]).to_pylist()
    finally:
        store.close()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a document is duplicated"
    return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


def _check_log(path: Path) -> int:
    """Every whole line of the migration log parses; only a last line without its newline may not. Return entries."""
    if not path.exists():
        return 0
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    whole, tail = lines[:-1], lines[-1]
    for line in whole:
        assert isinstance(json.loads(line), dict), line  # never half-written
    if tail:  # a line cut short by the kill: the reader skips it
        with pytest.raises(ValueError):
            json.loads(tail)
    assert len(read_log(path)) == len(whole)
    return len(whole)


def _commits(table: Path) -> set[str]:
    """The table's version manifests on disk (one per commit)."""
    try:
        return set(os.listdir(table / "_versions"))
    except FileNotFoundError:
        return set()


@pytest.mark.slow
def test_sigkill_migrate_backfill_at_random_points(tmp_path: Path, minilm) -> None:
    data = write_beir(build_mini_dataset(), tmp_path / "mini")
    save_shallow_copy(minilm, tmp_path / "old-model")
    config = tmp_path / "domainfit.toml"
    config.write_text(CONFIG)
    ws = tmp_path / "ws"
    built = CliRunner(env={"NO_COLOR": "1"}).invoke(
        app, ["index", str(data), "-w", str(ws), "-c", str(config), "--model", str(tmp_path / "old-model"), "--quiet"]
    )
    assert built.exit_code == 0, built.output
    shutil.copytree(ws, tmp_path / "reference")
    home, log = ws / "index", ws / "migrate" / "log.jsonl"
    pointer_bytes = (home / "serving.json").read_bytes()
    old_version = open_index(home)[1].version
    initial = _rows(home)

    script = Path(sys.executable).with_name("domainfit")
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join(sys.path)}

    def command(workspace: Path) -> list[str]:
        return [str(script), "migrate", "backfill", str(data), "-w", str(workspace), "-c", str(config),
                "--to", "sentence-transformers/all-MiniLM-L6-v2", "--json"]  # fmt: skip

    start = time.perf_counter()
    done = subprocess.run(command(tmp_path / "reference"), env=env, capture_output=True, text=True, check=True)
    span = time.perf_counter() - start
    filled = json.loads(done.stdout)
    new_version, total = filled["to_version"], filled["numbers"]["embedded"]
    assert total == len(initial) == 30
    reference = _rows(tmp_path / "reference" / "index")
    new_column = f"vec_{new_version}"

    table, rng, committed, partial = home / "lancedb" / "mini.lance", random.Random(14), 0, 0
    for trial in range(TRIALS):
        proc = subprocess.Popen(command(ws), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if trial % 2 == 0:  # a random time into the run (a run that ends first is not waited for)
            deadline = time.perf_counter() + rng.uniform(0.1, 0.9) * span
            while proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.01)
        else:  # right after a random number of commits of this run (or its end)
            seen, wanted = _commits(table), rng.randint(1, 4)
            while proc.poll() is None and len(_commits(table) - seen) < wanted:
                time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        rows = _rows(home)
        assert set(rows) == set(initial)
        with_new = 0
        for ident, row in rows.items():
            assert row["content_hash"] == initial[ident]["content_hash"]
            assert row[f"vec_{old_version}"] == initial[ident][f"vec_{old_version}"]  # the old side is untouched
            if row.get(new_column) is not None:
                with_new += 1
                np.testing.assert_allclose(row[new_column], reference[ident][new_column], atol=1e-5)
        assert with_new >= committed  # committed work is never lost
        committed = with_new
        partial += 0 < with_new < total
        assert (home / "serving.json").read_bytes() == pointer_bytes  # production did not move
        read_versions(home)  # never half-written
        _check_log(log)
    assert partial, "no kill landed among the backfill's commits"

    final = subprocess.run(command(ws), env=env, capture_output=True, text=True, check=True)
    result = json.loads(final.stdout)
    if not result["up_to_date"]:
        assert result["numbers"]["embedded"] == total - committed  # committed batches were not embedded again
        assert result["numbers"]["already_embedded"] == committed
    rows = _rows(home)
    assert set(rows) == set(reference)
    for ident, row in rows.items():
        assert row[f"vec_{old_version}"] == initial[ident][f"vec_{old_version}"]
        np.testing.assert_allclose(row[new_column], reference[ident][new_column], atol=1e-5)
    assert read_versions(home)[new_version].model == "sentence-transformers/all-MiniLM-L6-v2"
    store, _ = open_index(home)
    try:
        assert store.tags()[f"migrate-{new_version}"] == result["numbers"]["table_version"]
    finally:
        store.close()
    entries = _check_log(log)
    assert entries >= 1 and read_log(log)[-1]["step"] == "backfill"
    assert not [p.name for p in (ws / "migrate").glob(".*") if p.is_dir()]  # no staged folder left behind


def test_an_entry_appended_after_a_torn_line_is_whole(tmp_path: Path) -> None:
    from domainfit.migrate.log import append_entry

    log = tmp_path / "migrate" / "log.jsonl"
    append_entry(log, "plan", from_version="a", to_version="b", summary="planned", numbers={"n": 1})
    with log.open("ab") as handle:  # what a kill in the middle of the next write leaves
        handle.write(b'{"format_version": 1, "step": "backf')
    assert [e["step"] for e in read_log(log)] == ["plan"]  # the reader skips the torn line
    assert _check_log(log) == 1
    append_entry(log, "backfill", from_version="a", to_version="b", summary="done", numbers={"embedded": 30})
    assert [e["step"] for e in read_log(log)] == ["plan", "backfill"]  # not swallowed by the torn line
    assert _check_log(log) == 2 and log.read_bytes().endswith(b"\n")
