"""Tests for the packaged standard-library demo corpus and its build script."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from domainfit.core.errors import DomainfitError
from domainfit.core.types import Query
from domainfit.data import demo
from domainfit.data.demo import DEMO_FILES, demo_path
from domainfit.data.splits import check_leakage, check_qrels_leakage, normalise_text

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "dev", "test")
MIN_DOCS, MAX_DOCS = 2_000, 6_000


def read_jsonl(path: Path) -> dict[str, dict]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    by_id = {record["_id"]: record for record in records}
    assert len(by_id) == len(records), f"duplicate ids in {path.name}"
    return by_id


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    rows = []
    for line in lines[1:]:
        qid, did, score = line.split("\t")
        rows.append((qid, did, int(score)))
    return rows


@pytest.fixture(scope="module")
def data() -> dict:
    root = demo_path()
    return {
        "root": root,
        "corpus": read_jsonl(root / "corpus.jsonl"),
        "queries": read_jsonl(root / "queries.jsonl"),
        "qrels": {split: read_qrels(root / "qrels" / f"{split}.tsv") for split in SPLITS},
        "info": json.loads((root / "build_info.json").read_text(encoding="utf-8")),
    }


def test_packaged_folder_exists() -> None:
    root = demo_path()
    assert root.is_dir()
    assert root == ROOT / "src" / "domainfit" / "demo_data"
    for name in DEMO_FILES:
        assert (root / name).is_file(), name


def test_counts(data: dict) -> None:
    corpus, queries, info = data["corpus"], data["queries"], data["info"]
    assert MIN_DOCS <= len(corpus) <= MAX_DOCS
    assert len(queries) == len(corpus) == info["documents"] == info["queries"]
    sizes = {split: len(rows) for split, rows in data["qrels"].items()}
    assert sizes == info["queries_per_split"]
    assert sum(sizes.values()) == len(queries)
    for split, share in zip(SPLITS, (0.7, 0.1, 0.2), strict=True):
        assert abs(sizes[split] / len(queries) - share) < 0.05, split
    assert len({q["family"] for q in queries.values()}) == info["families"]


def test_records_are_well_formed(data: dict) -> None:
    for doc in data["corpus"].values():
        assert doc["_id"].startswith("d") and doc["title"] and doc["text"].strip()
        assert doc["kind"] in {"module", "class", "function", "method", "property"}
        assert doc["family"] == doc["module"].split(".")[0]
    for query in data["queries"].values():
        assert set(query) == {"_id", "text", "family", "module", "kind"}
        assert 4 <= len(query["text"].split()) <= 40


def test_qrels_name_known_queries_and_docs(data: dict) -> None:
    seen: dict[str, str] = {}
    for split, rows in data["qrels"].items():
        for qid, did, score in rows:
            assert qid in data["queries"] and did in data["corpus"]
            assert score == 1
            assert qid not in seen, f"{qid} in {seen.get(qid)} and {split}"
            seen[qid] = split
            assert data["queries"][qid]["family"] == data["corpus"][did]["family"]
    assert set(seen) == set(data["queries"])


def test_no_family_crosses_splits(data: dict) -> None:
    split_of = {qid: split for split, rows in data["qrels"].items() for qid, _, _ in rows}
    families = {qid: q["family"] for qid, q in data["queries"].items()}
    assert check_leakage(split_of, families) == []
    queries = {qid: Query(qid, q["text"], {"family": q["family"]}) for qid, q in data["queries"].items()}
    qrels_by_split = {split: {qid: {did: score} for qid, did, score in rows} for split, rows in data["qrels"].items()}
    assert check_qrels_leakage(qrels_by_split, queries) == []


def test_queries_not_in_their_documents(data: dict) -> None:
    for rows in data["qrels"].values():
        for qid, did, _ in rows:
            query = data["queries"][qid]["text"]
            doc = data["corpus"][did]
            full = f"{doc['title']}\n{doc['text']}"
            assert query not in full
            assert normalise_text(query) not in normalise_text(full)


def test_no_duplicate_queries_or_documents(data: dict) -> None:
    texts = [normalise_text(q["text"]) for q in data["queries"].values()]
    assert len(set(texts)) == len(texts)
    docs = [d["text"] for d in data["corpus"].values()]
    assert len(set(docs)) == len(docs)


def test_demo_path_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo, "files", lambda _package: tmp_path)
    with pytest.raises(DomainfitError, match=r"missing corpus\.jsonl"):
        demo_path()


def test_build_script_is_reproducible(data: dict, tmp_path: Path) -> None:
    if platform.python_version() != data["info"]["python_version"]:
        pytest.skip("packaged data was built with another Python version")
    out = tmp_path / "demo"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_demo_corpus.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in DEMO_FILES:
        assert (out / name).read_bytes() == (data["root"] / name).read_bytes(), name
