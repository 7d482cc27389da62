"""What the search-service tests share: a real LanceDB index of the mini corpus under two model versions.

Version ``base`` is the packaged MiniLM (mean pooling); version ``cls`` is the
same weights with CLS pooling, saved as its own sentence-transformers folder
(a second real model whose vectors differ). The index lives in a workspace's
``index/`` folder with its production pointer (``serving.json``) on tag ``prod``,
as ``domainfit index`` leaves it, in LanceDB (default) or Qdrant's local mode.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from conftest import build_mini_dataset
from domainfit.core.workspace import Workspace
from domainfit.index.backend import IndexDocument, ServingPointer, open_backend, write_pointer
from domainfit.index.precision import RangeCalibration, StoredPrecision
from domainfit.serve.encoder import SentenceTransformerEncoder

TOKEN = "s3cret-token-for-the-tests-0123456789"
#: The command-line entry point of the environment the tests run in.
CLI = str(Path(sys.executable).parent / "domainfit")
#: Seconds the service may take to come up (loading models on a busy two-core machine).
STARTUP_SECONDS = 900


def topic_of(doc_id: str) -> str:
    """The mini corpus's family of a document (``release`` for the distractors)."""
    if doc_id.startswith("x"):
        return "release"
    families = ["auth", "billing", "storage", "network", "compute"]
    return families[(int(doc_id[1:]) - 1) // 4]


def index_documents() -> list[IndexDocument]:
    """The mini corpus as index rows, with a ``topic`` and a ``rank`` metadata field."""
    corpus = build_mini_dataset().corpus
    return [
        IndexDocument(id=d.id, title=d.title or "", text=d.text, metadata={"topic": topic_of(d.id), "rank": i})
        for i, d in enumerate(corpus.values())
    ]


def cls_model(minilm):
    """MiniLM's weights (shared, not copied) with CLS pooling and normalisation: a second real model."""
    from sentence_transformers import SentenceTransformer, models

    transformer = minilm[0]
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
    return SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")


def save_cls_model(minilm, folder: Path) -> Path:
    """Save the CLS-pooled model as a sentence-transformers folder (safetensors)."""
    cls_model(minilm).save(str(folder), safe_serialization=True)
    return folder


@dataclass
class ServedIndex:
    """A workspace with an index, its documents and the two versions' encoders."""

    workspace: Path
    index: Path
    docs: list[IndexDocument]
    cls_model: Path
    encoders: dict[str, SentenceTransformerEncoder]


def build_served_index(root: Path, minilm, *, backend: str = "lancedb", quantised: bool = False) -> ServedIndex:
    """Build the workspace, index both versions, optimise (BM25), tag ``prod`` and write the pointer.

    ``backend``: the store (``lancedb`` or ``qdrant``, local mode). ``quantised``: also
    a version ``int8`` (MiniLM's vectors stored as compress's ``full/int8``, ranges
    calibrated on the corpus), encoded by the base model.
    """
    workspace = root / "ws"
    Workspace(workspace).ensure()
    cls_folder = save_cls_model(minilm, root / "minilm-cls")
    encoders = {
        "base": SentenceTransformerEncoder(minilm, "sentence-transformers/all-MiniLM-L6-v2"),
        "cls": SentenceTransformerEncoder(cls_model(minilm), str(cls_folder)),
    }
    docs = index_documents()
    texts = [d.embed_text() for d in docs]
    vectors = {v: e.encode(texts) for v, e in encoders.items()}
    folder = workspace / "index"
    store = open_backend(folder, "mini", backend=backend)
    try:
        if quantised:
            full = vectors["base"].shape[1]
            precision = StoredPrecision.of("full/int8", full)
            calibration = RangeCalibration(precision)
            calibration.add(vectors["base"])
            store.add_version("int8", full, precision.calibrated(calibration.ranges()))
            vectors["int8"] = vectors["base"]
            encoders["int8"] = encoders["base"]
        store.upsert(docs, vectors)
        store.optimize()
        version = store.create_tag("prod")
    finally:
        store.close()
    pointer = ServingPointer(
        backend=backend,
        corpus="mini",
        version="base",
        dimension=int(vectors["base"].shape[1]),
        model="sentence-transformers/all-MiniLM-L6-v2",
        tag="prod",
        table_version=version,
        mode="dense",
        min_score=None,
    )
    write_pointer(folder, pointer)
    return ServedIndex(workspace, folder, docs, cls_folder, encoders)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cosine(a: list[float], b: np.ndarray) -> float:
    """Cosine of two vectors."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def service_env() -> dict[str, str]:
    """The environment of a service the tests start: theirs, without a bearer token from the environment."""
    return {k: v for k, v in os.environ.items() if k != "DOMAINFIT_SERVE_TOKEN"}


@dataclass
class RunningService:
    """A ``domainfit serve`` process the tests started: an HTTP client on its address, its port and stderr file."""

    client: httpx.Client
    port: int
    stderr: Path

    @property
    def base_url(self) -> str:
        """The service's address."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running_service(args: list[str], root: Path, headers: dict[str, str] | None = None) -> Iterator[RunningService]:
    """Start ``domainfit serve ARGS --port P --quiet`` in its own process on a free port; stop it at the end.

    The service runs in a fresh interpreter (LanceDB is not fork-safe), in its
    own session, with stderr in ``root/server.err``; the block starts once
    ``GET /health`` (with ``headers``) answers 200. The client has that
    address as its base and no default headers.
    """
    port = free_port()
    cmd = [CLI, "serve", *args, "--port", str(port), "--quiet"]
    err_path = root / "server.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=service_env(), start_new_session=True)
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                while True:
                    assert proc.poll() is None, err_path.read_text()
                    try:
                        if client.get("/health", headers=headers).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "the server did not come up"
                    time.sleep(0.5)
                yield RunningService(client, port, err_path)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
