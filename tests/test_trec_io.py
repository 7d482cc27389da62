from __future__ import annotations

from pathlib import Path

import pytest

from domainfit.core.errors import InputError
from domainfit.evaluation.trec import (
    read_trec_qrels,
    read_trec_run,
    write_trec_qrels,
    write_trec_run,
)


def test_run_round_trip_and_order(tmp_path: Path) -> None:
    run = {
        "q2": {"a": 1.0, "c": 1.0, "b": 1.0, "z": 2.5},
        "q1": {"d10": 0.1 + 0.2, "d9": -1e-9, "inf": float("inf")},
        "q3": {},
    }
    path = tmp_path / "sub" / "run.trec"
    write_trec_run(path, run, tag="bm25")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [
        "q1 Q0 inf 1 inf bm25",
        "q1 Q0 d10 2 0.30000000000000004 bm25",
        "q1 Q0 d9 3 -1e-09 bm25",
        "q2 Q0 z 1 2.5 bm25",
        # ties: doc id descending, as trec_eval ranks them
        "q2 Q0 c 2 1.0 bm25",
        "q2 Q0 b 3 1.0 bm25",
        "q2 Q0 a 4 1.0 bm25",
    ]
    back = read_trec_run(path)
    assert back == {q: docs for q, docs in run.items() if docs}  # exact floats
    assert not list(path.parent.glob(".*.tmp"))  # no temp file left behind


def test_run_depth(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    write_trec_run(path, {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, tag="t", depth=2)
    assert read_trec_run(path) == {"q": {"a": 3.0, "b": 2.0}}
    with pytest.raises(ValueError):
        write_trec_run(path, {"q": {"a": 1.0}}, tag="t", depth=0)


def test_write_rejects_bad_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_trec_run(tmp_path / "r", {"q 1": {"a": 1.0}}, tag="t")
    with pytest.raises(ValueError):
        write_trec_run(tmp_path / "r", {"q": {"a": 1.0}}, tag="my tag")
    with pytest.raises(ValueError):
        write_trec_run(tmp_path / "r", {"q": {"a": float("nan")}}, tag="t")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("content", "line", "field"),
    [
        ("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 2 0.4\n", 2, "line"),
        ("q1 Q0 d1 1 0.5 tag extra\n", 1, "line"),
        ("q1 Q0 d1 1 high tag\n", 1, "score"),
        ("q1 Q0 d1 1 nan tag\n", 1, "score"),
        ("\nq1 Q0 d1 x 0.5 tag\n", 2, "rank"),
        ("q1 Q0 d1 1 0.5 tag\nq1 Q0 d1 2 0.4 tag\n", 2, "docid"),
    ],
)
def test_read_run_errors(tmp_path: Path, content: str, line: int, field: str) -> None:
    path = tmp_path / "bad.trec"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_trec_run(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert str(info.value).startswith(f"{path}:{line}: {field}: ")


def test_read_run_tolerates_blank_lines_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("q1\tQ0\td1\t1\t2\tt\n\n  \nq1 Q0 d2 2 1e3 t\n", encoding="utf-8")
    assert read_trec_run(path) == {"q1": {"d1": 2.0, "d2": 1000.0}}


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_trec_run(tmp_path / "nope.trec")
    assert info.value.line == 0
    binary = tmp_path / "bin.trec"
    binary.write_bytes(b"\xff\xfe\x00q")
    with pytest.raises(InputError):
        read_trec_run(binary)


def test_qrels_round_trip_and_errors(tmp_path: Path) -> None:
    qrels = {"q2": {"b": 0, "a": 2}, "q1": {"x": -1}}
    path = tmp_path / "qrels.txt"
    write_trec_qrels(path, qrels)
    assert path.read_text(encoding="utf-8") == "q1 0 x -1\nq2 0 a 2\nq2 0 b 0\n"
    assert read_trec_qrels(path) == qrels
    for content, field in [
        ("q1 0 d1\n", "line"),
        ("q1 0 d1 1.5\n", "grade"),
        ("q 0 d 1\nq 0 d 2\n", "docid"),
    ]:
        path.write_text(content, encoding="utf-8")
        with pytest.raises(InputError) as info:
            read_trec_qrels(path)
        assert info.value.field == field
