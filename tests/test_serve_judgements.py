"""The judgements writer of the ``/compare`` page: real folders, real threads, processes and SIGKILLs.

A judgement goes to ``qrels/<split>.tsv`` (header written with the first one)
and its query to ``queries.jsonl`` with an id derived from its text; the first
judgement of a (query, document) pair stands; a folder whose files are
malformed is refused before anything is written (exit 2 from the command);
an existing folder is only appended to, in its format, and stays one
`load_beir` (and so `domainfit bench`) reads.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import build_mini_dataset
from domainfit.core.errors import InputError, UsageError
from domainfit.data.beir import load_beir, read_qrels
from domainfit.serve.judgements import InvalidJudgement, JudgementFolder, judged_query_id
from serve_support import CLI, service_env

CORPUS_IDS = frozenset(build_mini_dataset().corpus)
HEADER = "query-id\tcorpus-id\tscore\n"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_a_new_folder_gets_the_header_the_line_and_the_query(tmp_path):
    folder = JudgementFolder(tmp_path / "judged", "test")
    assert not (tmp_path / "judged").exists()  # nothing is written before the first judgement
    done = folder.judge("  reset a password  ", "d002", 1, CORPUS_IDS)
    qid = judged_query_id("reset a password")
    assert done.written and done.query_id == qid and done.grade == 1
    assert (tmp_path / "judged" / "qrels" / "test.tsv").read_text() == f"{HEADER}{qid}\td002\t1\n"
    assert _lines(tmp_path / "judged" / "queries.jsonl") == [f'{{"_id":"{qid}","text":"reset a password"}}']
    second = folder.judge("reset a password", "d001", 0, CORPUS_IDS)
    assert second.written and second.query_id == qid  # the same text, the same id; the query is not repeated
    assert len(_lines(tmp_path / "judged" / "queries.jsonl")) == 1
    assert _lines(tmp_path / "judged" / "qrels" / "test.tsv")[1:] == [f"{qid}\td002\t1", f"{qid}\td001\t0"]


def test_the_first_judgement_stands_also_after_a_restart(tmp_path):
    folder = JudgementFolder(tmp_path / "j", "test")
    folder.judge("dns ttl", "d015", 1, CORPUS_IDS)
    again = folder.judge("dns  ttl", "d015", 0, CORPUS_IDS)  # the same query once normalised
    assert not again.written and again.grade == 1
    reopened = JudgementFolder(tmp_path / "j", "test")
    assert reopened.grades("dns ttl") == {"d015": 1}
    assert not reopened.judge("dns ttl", "d015", 0, CORPUS_IDS).written
    assert len(_lines(tmp_path / "j" / "qrels" / "test.tsv")) == 2
    assert judged_query_id("dns ttl") == reopened.judge("dns ttl", "d016", 0, CORPUS_IDS).query_id


def test_an_existing_beir_folder_is_appended_to_in_its_format_and_bench_still_reads_it(mini_beir):
    before = {p: p.read_bytes() for p in mini_beir.rglob("*") if p.is_file()}
    folder = JudgementFolder(mini_beir, "test")
    known = folder.judge("reset password link", "d002", 1, CORPUS_IDS)  # q002's text: its id is kept
    assert known.query_id == "q002" and known.written
    new = folder.judge("where is my invoice", "d005", 2, CORPUS_IDS)
    for path, data in before.items():  # every file the user had keeps its bytes as a prefix
        assert path.read_bytes().startswith(data), path
    assert (mini_beir / "corpus.jsonl").read_bytes() == before[mini_beir / "corpus.jsonl"]
    dataset = load_beir(mini_beir)
    assert dataset.qrels["test"]["q002"] == {"d002": 1}
    assert dataset.qrels["test"][new.query_id] == {"d005": 2}
    assert dataset.queries[new.query_id].text == "where is my invoice"
    train = JudgementFolder(mini_beir, "train")  # q002 → d002 is already judged in train: it stands
    assert not train.judge("reset password link", "d002", 0, CORPUS_IDS).written


def test_a_last_line_without_its_newline_is_completed_not_joined(tmp_path):
    root = shutil.copytree(build_beir(tmp_path), tmp_path / "copy")
    qrels = root / "qrels" / "test.tsv"
    qrels.write_bytes(qrels.read_bytes().rstrip(b"\n"))
    queries = root / "queries.jsonl"
    queries.write_bytes(queries.read_bytes().rstrip(b"\n"))
    JudgementFolder(root, "test").judge("a brand new query", "d001", 1, CORPUS_IDS)
    dataset = load_beir(root)
    assert dataset.qrels["test"][judged_query_id("a brand new query")] == {"d001": 1}
    assert len(dataset.queries) == 21


def build_beir(tmp_path: Path) -> Path:
    from domainfit.data.beir import write_beir

    return write_beir(build_mini_dataset(), tmp_path / "beir")


def test_invalid_judgements_write_nothing(tmp_path):
    folder = JudgementFolder(build_beir(tmp_path), "test")
    before = {p: p.read_bytes() for p in folder.root.rglob("*") if p.is_file()}
    with pytest.raises(InvalidJudgement, match="not a document of the index"):
        folder.judge("q", "../../etc/passwd", 1, CORPUS_IDS)
    with pytest.raises(InvalidJudgement, match=r"doc_id: .*space"):
        folder.judge("q", "d 1", 1, CORPUS_IDS)
    with pytest.raises(InvalidJudgement, match="blank"):
        folder.judge("   ", "d001", 1, CORPUS_IDS)
    with pytest.raises(InvalidJudgement, match=r"corpus\.jsonl"):
        folder.judge("q", "d999", 1, None)  # not in the folder's corpus either
    with pytest.raises(InvalidJudgement, match="grade"):
        folder.judge("q", "d001", 2**40, CORPUS_IDS)
    assert {p: p.read_bytes() for p in folder.root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("target", "content", "match"),
    [
        ("qrels/test.tsv", "qid\tdid\trel\nq001\td001\t1\n", "header must be"),
        ("qrels/test.tsv", HEADER + "q001\td001\n", "expected 3 tab-separated columns"),
        ("qrels/test.tsv", HEADER + "nope\td001\t1\n", "unknown query 'nope'"),
        ("qrels/test.tsv", HEADER + "q001\td001\t1\nq001\td001\t0\n", "duplicate judgement"),
        ("qrels/dev.tsv", HEADER + "q001\td001\tyes\n", "score: must be an integer"),
        ("qrels/test.tsv", HEADER + "q001\tmissing\t1\n", "unknown document 'missing'"),
        ("queries.jsonl", '{"_id": "q1", "text": "ok"}\n{"_id": "q2", "text": \n', "invalid JSON"),
        ("corpus.jsonl", '{"_id": "d1"}\n', "text: missing"),
    ],
)
def test_a_malformed_folder_is_refused_with_file_line_and_field(tmp_path, target, content, match):
    root = build_beir(tmp_path)
    (root / target).write_text(content, encoding="utf-8")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match=match) as caught:
        JudgementFolder(root, "test")
    assert str(caught.value).startswith(str(root / target))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_file_path_or_a_path_as_split_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        JudgementFolder(tmp_path / "file")
    with pytest.raises(UsageError, match="bare split name"):
        JudgementFolder(tmp_path / "j", "../test")


def test_threads_append_whole_lines_once_each(tmp_path):
    folder = JudgementFolder(tmp_path / "j", "test")
    pairs = [(f"query {i % 7}", f"d{1 + i % 20:03d}") for i in range(60)]  # 60 tries, duplicates among them
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(len(pairs)):
                query, doc = pairs[(i + offset) % len(pairs)]
                folder.judge(query, doc, 1, CORPUS_IDS)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 9,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = _lines(tmp_path / "j" / "qrels" / "test.tsv")
    assert rows[0] == HEADER.strip() and len(rows) - 1 == len(set(pairs))
    assert len(set(rows[1:])) == len(rows) - 1
    assert len(_lines(tmp_path / "j" / "queries.jsonl")) == 7


WRITER = textwrap.dedent(
    """
    import sys
    from domainfit.serve.judgements import JudgementFolder
    folder = JudgementFolder(sys.argv[1], "test")
    n = int(sys.argv[2])
    print("ready", flush=True)
    for i in range(n):
        folder.judge(f"query number {i % 13}", f"d{1 + i % 20:03d}", i % 2)
    """
)


def _writer(root: Path, n: int) -> subprocess.Popen[str]:
    env = {**service_env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(n)], stdout=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip


def test_two_processes_on_one_folder_write_each_pair_once(tmp_path):
    root = build_beir(tmp_path)
    procs = [_writer(root, 120) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    qrels = read_qrels(root / "qrels" / "test.tsv", load_beir(root).queries, CORPUS_IDS)
    judged = {(q, d) for q, docs in qrels.items() if q.startswith("judged-") for d in docs}
    assert len(judged) == len({(f"query number {i % 13}", i % 20) for i in range(120)})
    assert len(_lines(root / "qrels" / "test.tsv")) == 1 + 8 + len(judged)  # header, the mini split, the new


def test_sigkill_at_random_points_never_leaves_a_torn_or_duplicated_line(tmp_path):
    root = build_beir(tmp_path)
    rng = random.Random(14)
    for trial in range(6):
        proc = _writer(root, 10**9)  # runs until killed, however fast the machine
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL  # killed while writing, not finished
        for name in ("queries.jsonl", "qrels/test.tsv"):
            assert (root / name).read_bytes().endswith(b"\n"), (trial, name)
        folder = JudgementFolder(root, "test")  # validates every line: whole, known, no duplicate pair
        assert load_beir(root).qrels["test"]
        assert folder.count() >= 8
    assert folder.count() > 8  # the writers got judgements onto disk between the kills


def test_serve_refuses_a_malformed_judgements_folder_before_anything_loads(tmp_path):
    root = build_beir(tmp_path)
    (root / "qrels" / "test.tsv").write_text("bad header\n")
    started = time.monotonic()
    result = subprocess.run(
        [CLI, "serve", "--workspace", str(tmp_path / "no-workspace"), "--judgements", str(root), "--quiet"],
        capture_output=True, text=True, timeout=300, env=service_env(),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "qrels/test.tsv:1" in lines[0] and "header" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "no-workspace").exists()
    assert time.monotonic() - started < 120
