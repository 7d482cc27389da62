"""Re-embedding on Ray Data: a local Ray instance with two model actors fills the index as one machine does.

The single-machine path never imports Ray (checked in a fresh interpreter).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import build_mini_dataset
from domainfit.index.backend import IndexDocument
from domainfit.index.embed import sync_index
from domainfit.index.lance import LanceBackend


def test_the_single_machine_path_never_imports_ray(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from domainfit.stages.index import IndexStage\n"
        "from domainfit.index.backend import IndexDocument, open_index\n"
        "from domainfit.index.embed import sync_index\n"
        "from domainfit.index.lance import LanceBackend\n"
        f"store = LanceBackend({str(tmp_path)!r}, 'c')\n"
        "docs = [IndexDocument('a', 'x'), IndexDocument('b', 'y')]\n"
        "sync_index(store, docs, 'v', 2, lambda t: np.eye(2, dtype=np.float32)[: len(t)])\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_ray_data_with_two_workers_matches_the_local_sync(tmp_path: Path, minilm) -> None:
    ray = pytest.importorskip("ray")
    from domainfit.index.ray_embed import ray_sync_index
    from domainfit.retrieval.dense import DenseRetriever

    dataset = build_mini_dataset()
    docs = [IndexDocument(d.id, d.text, d.title) for d in dataset.corpus.values()]
    docs += [IndexDocument(f"extra{i}", f"Extra note {i} on quota and latency.") for i in range(70)]
    local = LanceBackend(tmp_path / "local", "c")
    sync_index(local, docs, "m", 384, DenseRetriever(minilm, max_seq_length=256).encode_documents, batch_size=32)
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = LanceBackend(tmp_path / "ray", "c")
        first = ray_sync_index(remote, docs, "m", 384, "sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256,
                               workers=2, batch_size=16)  # fmt: skip
        again = ray_sync_index(remote, docs, "m", 384, "sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256,
                               workers=2, batch_size=16)  # fmt: skip
    finally:
        ray.shutdown()
    assert (first.embedded, first.written, again.embedded) == (len(docs), len(docs), 0)
    ours = {r["id"]: r["vec_m"] for r in local.table.to_arrow().select(["id", "vec_m"]).to_pylist()}
    theirs = {r["id"]: r["vec_m"] for r in remote.table.to_arrow().select(["id", "vec_m"]).to_pylist()}
    assert set(ours) == set(theirs) == {d.id for d in docs}
    for ident, vector in ours.items():
        np.testing.assert_allclose(theirs[ident], vector, atol=1e-5)
