"""Incremental, resumable re-embedding: only what is new, changed or missing is embedded; SIGKILL loses no commit.

The re-embedding runs in a child process (a fresh interpreter, as a spawned
worker would be) over a real LanceDB folder. The encoder is a real,
deterministic one that needs no model load (hashed bag of words, unit
length), so the kill trials stay fast; the stage test kills the real
``domainfit index`` with MiniLM (``-m slow``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from domainfit.index.backend import IndexDocument, open_backend
from domainfit.index.embed import plan_sync, sync_index
from domainfit.index.lance import LanceBackend
from domainfit.index.sparse import term_index

DIM = 32

#: The child: sync a corpus file into the store with the hashed encoder, one commit per batch, reporting each.
CHILD = r"""
import json, sys
import numpy as np
from domainfit.index.backend import IndexDocument
from domainfit.index.embed import sync_index
from domainfit.index.lance import LanceBackend
from domainfit.index.sparse import term_index

def encode(texts):
    out = np.zeros((len(texts), 32), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, term_index(word) % 32] += 1.0
        out[row, 0] += 1e-3
    return out / np.linalg.norm(out, axis=1, keepdims=True)

folder, corpus_file, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [IndexDocument(**json.loads(line)) for line in open(corpus_file, encoding="utf-8")]
store = LanceBackend(folder, "crash")
states = store.states("h")
todo = sum(1 for d in docs if d.id not in states or states[d.id].content_hash != d.content_hash
           or not states[d.id].has_vector)
print(f"plan {todo}", flush=True)
sync_index(store, docs, "h", 32, encode, batch_size=batch, on_commit=lambda n: print(f"commit {n}", flush=True))
print("done", flush=True)
"""


_CHILD_CODE: dict = {}
exec(CHILD.split("folder, corpus_file")[0], _CHILD_CODE)  # the child's encoder, defined by the same code


def encode(texts: list[str]) -> np.ndarray:
    """The child's encoder, in the test's process."""
    return _CHILD_CODE["encode"](texts)


def write_corpus(path: Path, docs: list[IndexDocument]) -> None:
    """Write the rows the child reads (one JSON object per line)."""
    import json

    path.write_text("".join(json.dumps({"id": d.id, "text": d.text, "title": d.title}) + "\n" for d in docs))


def make_docs(n: int, generation: int = 0) -> list[IndexDocument]:
    """``n`` short documents; ``generation`` changes the text of every fifth one."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    return [
        IndexDocument(
            f"doc{i:03d}",
            f"{words[i % 8]} {words[(i * 5) % 8]} item {i}" + (f" rev {generation}" if i % 5 == 0 else ""),
        )
        for i in range(n)
    ]


def check_store(folder: Path, docs: list[IndexDocument]) -> int:
    """Open the table; check no row is duplicated and every stored vector is its text's; return the rows done.

    Done: rows of the current corpus (same id and content hash) that have their vector.
    """
    if not (folder / "crash.lance").exists():
        return 0
    store = LanceBackend(folder, "crash", read_only=True)
    rows = store.table.to_arrow().select(["id", "content_hash", "full_text", "vec_h"]).to_pylist()
    store.close()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a document is duplicated"
    hashes = {d.id: d.content_hash for d in docs}
    done = 0
    for row in rows:
        if row["vec_h"] is not None:
            np.testing.assert_allclose(row["vec_h"], encode([row["full_text"]])[0], atol=1e-6)
            done += hashes.get(row["id"]) == row["content_hash"]
    return done


def run_child(folder: Path, corpus_file: Path, batch: int, kill_after: int | None, delay: float) -> list[str]:
    """Run the child; SIGKILL it ``delay`` s after its ``kill_after``-th commit line (None: let it finish)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(corpus_file), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        commits = sum(1 for x in lines if x.startswith("commit"))
        if kill_after is not None and line.startswith(("plan", "commit")) and commits >= kill_after:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=600)
    return lines


def test_sigkill_at_random_points_loses_no_commit(tmp_path: Path) -> None:
    rng = random.Random(13)
    folder, corpus_file = tmp_path / "lancedb", tmp_path / "corpus.jsonl"
    generation, docs = 0, make_docs(16)
    write_corpus(corpus_file, docs)
    trials = 0
    while trials < 10:
        done = check_store(folder, docs)
        if done == len(docs):  # finished: change the corpus so the next trial has work (changed, deleted, new)
            generation += 1
            docs = make_docs(16 + generation * 2, generation)[generation:]
            write_corpus(corpus_file, docs)
            done = check_store(folder, docs)
        lines = run_child(folder, corpus_file, 2, kill_after=rng.randint(0, 4), delay=rng.uniform(0.0, 0.05))
        trials += 1
        plan = next(int(x.split()[1]) for x in lines if x.startswith("plan"))
        assert plan == len(docs) - done, "committed work was redone (or work was lost)"
        after = check_store(folder, docs)
        assert after >= done
    lines = run_child(folder, corpus_file, 2, kill_after=None, delay=0.0)
    assert lines[-1] == "done"
    assert check_store(folder, docs) == len(docs)
    store = LanceBackend(folder, "crash", read_only=True)
    assert set(store.states("h")) == {d.id for d in docs}
    assert generation >= 1, "the trials never reached a changed corpus"


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
def test_only_new_changed_and_missing_documents_are_embedded(tmp_path: Path, backend: str) -> None:
    seen: list[str] = []

    def counting(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return encode(texts)

    docs = make_docs(20)
    store = open_backend(tmp_path, "inc", backend=backend)
    try:
        first = sync_index(store, docs, "h", DIM, counting, batch_size=4)
        assert (first.embedded, first.written, first.deleted, first.batches) == (20, 20, 0, 5)
        assert len(seen) == 20
        again = sync_index(store, docs, "h", DIM, counting, batch_size=4)
        assert (again.embedded, again.written, again.deleted, again.already_embedded) == (0, 0, 0, 20)
        changed = [IndexDocument(docs[3].id, "a new text"), *docs[:3], *docs[4:19], IndexDocument("new1", "brand new")]
        seen.clear()
        third = sync_index(store, changed, "h", DIM, counting, batch_size=4)
        assert (third.embedded, third.written, third.deleted) == (2, 2, 1)  # doc003 changed, new1 added, doc019 gone
        assert sorted(seen) == sorted(["a new text", "brand new"])
        assert set(store.states("h")) == {d.id for d in changed}
        second_model = sync_index(store, changed, "h2", DIM, counting, batch_size=8)
        assert second_model.embedded == 20 and second_model.written == 0  # a new version: every row lacks it
        assert all(s.has_vector for s in store.states("h").values())
    finally:
        store.close()


def test_plan_sync_compares_hashes_and_vectors() -> None:
    from domainfit.index.backend import DocState

    docs = make_docs(4)
    states = {
        docs[0].id: DocState(docs[0].content_hash, True),
        docs[1].id: DocState(docs[1].content_hash, False),
        docs[2].id: DocState("stale", True),
        "gone": DocState("x", True),
    }
    plan = plan_sync(states, docs)
    assert [d.id for d in plan.write] == [docs[2].id, docs[3].id]
    assert [d.id for d in plan.embed] == [docs[1].id, docs[2].id, docs[3].id]
    assert plan.delete == ["gone"] and plan.unchanged == 1


def test_term_index_is_stable() -> None:
    assert term_index("refund") == term_index("refund") != term_index("refunds")
