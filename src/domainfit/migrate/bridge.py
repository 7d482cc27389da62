"""A query-side bridge: map the new model's query vectors into the old document vectors' space.

While the new model's document vectors are still being backfilled, the service
can already embed queries with the new model and search the old vectors
through a linear map fitted on texts embedded by both models (Drift-Adapter,
arXiv 2509.23471; notes §3). Two kinds of map:

* ``procrustes``: the orthogonal ``W`` minimising ``|X W - Y|``
  (`scipy.linalg.orthogonal_procrustes`). When the widths differ both sides
  are zero-padded to the larger one and ``W`` is the top-left block of the
  padded solution, so a new model that is a rotation of the old one (or the
  old one plus extra dimensions) is recovered exactly.
* ``affine``: ``Y ≈ X W + b`` by ridge regression on centred vectors, reduced
  to rank ``r`` by projecting onto the top ``r`` right singular vectors of the
  fitted values (reduced-rank ridge). The penalty is relative: ``ridge``
  times the mean eigenvalue of ``XᵀX``.

`choose_bridge` fits every candidate (Procrustes and each rank x penalty) on
a training share of the pairs, scores it on the held-out share (`pair_mrr`:
how well each mapped vector finds its own text's old vector among the
held-out ones; or any ``scorer`` the caller passes, such as NDCG of bridged
search), and refits the winner on all pairs. Mean cosine is the wrong
criterion: on the demo corpus it chose a heavily shrunk affine map that
retained 56% of NDCG@10 where Procrustes retained 84%.
`bridge_retention` measures what matters: NDCG@10 of bridged search (new
queries, mapped, against old documents) over NDCG@10 of full re-embedding (new
queries against new documents). `Bridge.save`/`load_bridge` keep a map as a
small ``.npz`` (no pickle) with a JSON header.

How the ``migrate bridge`` stage calls this: embed a sample of corpus texts
(and training queries) with both models, `choose_bridge` on them, measure
`bridge_retention` on the benchmark split, write the map with `Bridge.save`
into ``<workspace>/migrate/``, and let `domainfit.migrate.compare.migration_gate`
(``bridge_retention=``) refuse a map below ``min_bridge_retention``; the
service then calls `Bridge.apply` on each query vector before searching the
old column.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_bytes
from domainfit.core.types import Qrels, Run
from domainfit.evaluation.metrics import evaluate
from domainfit.migrate.config import MigrateSettings
from domainfit.retrieval.dense import exact_search

BridgeKind = Literal["procrustes", "affine"]
#: Version of the ``.npz`` layout written by `Bridge.save`.
BRIDGE_FORMAT = 1


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows scaled to unit L2 norm (zero rows stay zero)."""
    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0)


@dataclass(frozen=True)
class Bridge:
    """A fitted map ``x -> normalise(x W + b)`` from the new model's space to the old one's.

    Fields: ``kind``, ``weight`` (``(d_new, d_old)``), ``bias`` (``(d_old,)``),
    the affine map's ``rank`` and ``ridge`` (None for Procrustes) and
    ``header`` (JSON-ready facts: models, pairs fitted on, dev score).
    """

    kind: BridgeKind
    weight: np.ndarray
    bias: np.ndarray
    rank: int | None = None
    ridge: float | None = None
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> tuple[int, int]:
        """Return ``(input width, output width)``."""
        return int(self.weight.shape[0]), int(self.weight.shape[1])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Map new-model vectors ``(n, d_new)`` (or one ``(d_new,)``) into the old space, L2-normalised, float32."""
        arr = np.asarray(vectors, dtype=np.float32)
        single = arr.ndim == 1
        arr = arr[None, :] if single else arr
        if arr.ndim != 2 or arr.shape[1] != self.dims[0]:
            raise ValueError(f"the bridge maps {self.dims[0]}-wide vectors, got shape {np.shape(vectors)}")
        out = normalize_rows(arr @ self.weight + self.bias)
        return out[0] if single else out

    def describe(self) -> dict[str, Any]:
        """Return every knob and fact of the map (for reports and manifests)."""
        return {"kind": self.kind, "dims": list(self.dims), "rank": self.rank, "ridge": self.ridge, **self.header}

    def save(self, path: Path | str) -> Path:
        """Write the map to ``path`` (``.npz``: ``weight``, ``bias``, a JSON ``header``) atomically; return the path."""
        header = {"format_version": BRIDGE_FORMAT, **self.describe()}
        buffer = io.BytesIO()
        np.savez(
            buffer,
            weight=self.weight.astype(np.float32),
            bias=self.bias.astype(np.float32),
            header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        )
        target = Path(path)
        atomic_write_bytes(target, buffer.getvalue())
        return target


def load_bridge(path: Path | str) -> Bridge:
    """Read a map written by `Bridge.save`.

    Raises `InputError` (``file: field: message``) for a file that is not a
    bridge, of another format version, or whose arrays do not fit its header.
    """
    source = Path(path)
    try:
        with np.load(source, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("weight", "bias", "header")}
    except FileNotFoundError:
        raise InputError(source, 0, "-", "bridge file not found") from None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(source, 0, "-", f"not a domainfit bridge file ({exc})") from None
    try:
        header = json.loads(arrays["header"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(source, 0, "header", "the header is not JSON") from None
    if header.get("format_version") != BRIDGE_FORMAT:
        raise InputError(source, 0, "format_version", f"expected {BRIDGE_FORMAT}, got {header.get('format_version')!r}")
    weight, bias = arrays["weight"], arrays["bias"]
    if header.get("kind") not in ("procrustes", "affine"):
        raise InputError(source, 0, "kind", f"unknown bridge kind {header.get('kind')!r}")
    if weight.ndim != 2 or bias.shape != (weight.shape[1],) or list(weight.shape) != header.get("dims"):
        raise InputError(source, 0, "weight", f"arrays of shapes {weight.shape}, {bias.shape} do not fit the header")
    facts = {k: v for k, v in header.items() if k not in ("format_version", "kind", "dims", "rank", "ridge")}
    return Bridge(header["kind"], weight, bias, header.get("rank"), header.get("ridge"), facts)


def _pairs(new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check and return the paired vectors as float64 (one row per text, both models)."""
    x = np.asarray(new, dtype=np.float64)
    y = np.asarray(old, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"paired vectors must be (n, d) arrays with one row per text, got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise ValueError("a bridge needs at least 2 paired texts")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("the paired vectors hold a NaN or an infinity")
    return x, y


def fit_procrustes(new: np.ndarray, old: np.ndarray) -> Bridge:
    """Fit the orthogonal map from new-model to old-model vectors of the same texts (rows paired).

    Different widths: both sides are zero-padded to the larger width and the
    weight is the ``(d_new, d_old)`` block of the padded orthogonal solution.
    """
    from scipy.linalg import orthogonal_procrustes

    x, y = _pairs(new, old)
    width = max(x.shape[1], y.shape[1])
    x_pad = np.pad(x, ((0, 0), (0, width - x.shape[1])))
    y_pad = np.pad(y, ((0, 0), (0, width - y.shape[1])))
    rotation, _ = orthogonal_procrustes(x_pad, y_pad)
    weight = rotation[: x.shape[1], : y.shape[1]]
    return Bridge(
        "procrustes", weight.astype(np.float32), np.zeros(y.shape[1], dtype=np.float32), header={"pairs": len(x)}
    )


def fit_affine(new: np.ndarray, old: np.ndarray, rank: int | None = None, ridge: float = 1e-2) -> Bridge:
    """Fit ``old ≈ new W + b`` by ridge regression, reduced to ``rank`` (None: full rank).

    The penalty is ``ridge`` times the mean eigenvalue of the centred ``XᵀX``,
    so one value suits any embedding scale.
    """
    x, y = _pairs(new, old)
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc
    penalty = ridge * float(np.trace(gram)) / gram.shape[0]
    weight = np.linalg.solve(gram + penalty * np.eye(gram.shape[0]), xc.T @ yc)
    full = min(weight.shape)
    if rank is not None and rank < full:
        _, _, vt = np.linalg.svd(xc @ weight, full_matrices=False)
        weight = weight @ vt[:rank].T @ vt[:rank]
    bias = y_mean - x_mean @ weight
    used = None if rank is None or rank >= full else rank
    return Bridge("affine", weight.astype(np.float32), bias.astype(np.float32), used, ridge, header={"pairs": len(x)})


def mean_cosine(bridge: Bridge, new: np.ndarray, old: np.ndarray) -> float:
    """Return the mean cosine similarity between mapped new-model vectors and the true old-model vectors."""
    mapped = bridge.apply(new)
    return float(np.mean(np.sum(mapped * normalize_rows(old), axis=1)))


def pair_mrr(bridge: Bridge, new: np.ndarray, old: np.ndarray) -> float:
    """Return how well mapped vectors find their own partner: MRR of each text's old vector among all of them.

    Each mapped new-model vector searches the old-model vectors of the same
    texts; the score is the mean reciprocal rank of its own text's vector.
    Unlike mean cosine, it rewards a map that keeps texts apart, which is what
    search needs (a map that predicts the common mean direction of an
    anisotropic embedding scores a high cosine and a poor ranking).
    """
    sims = bridge.apply(new) @ normalize_rows(old).T
    own = np.diag(sims)
    ranks = 1 + np.sum(sims > own[:, None], axis=1)
    return float(np.mean(1.0 / ranks))


@dataclass(frozen=True)
class Candidate:
    """One map tried by `choose_bridge`: kind, rank, ridge and its held-out score."""

    kind: BridgeKind
    rank: int | None
    ridge: float | None
    dev_score: float


@dataclass(frozen=True)
class BridgeChoice:
    """The chosen map (refitted on every pair), every candidate's held-out score and what the score was."""

    bridge: Bridge
    candidates: tuple[Candidate, ...]
    score: str
    n_train: int
    n_dev: int

    def best(self, kind: BridgeKind) -> Candidate:
        """Return the best-scoring candidate of one kind; raises `KeyError` when none was tried."""
        found = [c for c in self.candidates if c.kind == kind]
        if not found:
            raise KeyError(kind)
        return max(found, key=lambda c: c.dev_score)

    def to_dict(self) -> dict[str, Any]:
        """Return the choice as plain JSON-ready values."""
        return {
            "bridge": self.bridge.describe(),
            "score": self.score,
            "n_train": self.n_train,
            "n_dev": self.n_dev,
            "candidates": [c.__dict__ for c in self.candidates],
        }


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train / dev row indices, at least one row on each side."""
    order = np.random.default_rng(seed).permutation(n)
    n_dev = min(n - 1, max(1, round(n * fraction)))
    return np.sort(order[n_dev:]), np.sort(order[:n_dev])


def _candidates(
    settings: MigrateSettings, kinds: Sequence[BridgeKind], width: int
) -> list[tuple[BridgeKind, int | None, float | None]]:
    """Every (kind, rank, ridge) to try; ranks at or above ``width`` collapse into full rank."""
    out: list[tuple[BridgeKind, int | None, float | None]] = []
    if "procrustes" in kinds:
        out.append(("procrustes", None, None))
    if "affine" in kinds:
        ranks = list(dict.fromkeys(None if r is None or r >= width else r for r in settings.bridge_ranks))
        out += [("affine", rank, ridge) for rank in ranks for ridge in settings.bridge_ridge]
    return out


def _fit(kind: BridgeKind, rank: int | None, ridge: float | None, new: np.ndarray, old: np.ndarray) -> Bridge:
    """Fit one candidate."""
    if kind == "procrustes":
        return fit_procrustes(new, old)
    return fit_affine(new, old, rank, 1e-2 if ridge is None else ridge)


def choose_bridge(
    new: np.ndarray,
    old: np.ndarray,
    settings: MigrateSettings | None = None,
    *,
    kinds: Sequence[BridgeKind] = ("procrustes", "affine"),
    scorer: Callable[[Bridge], float] | None = None,
    header: Mapping[str, Any] | None = None,
) -> BridgeChoice:
    """Fit every candidate map on a training share of the pairs, pick the best on the held-out share, refit it.

    Inputs: the paired vectors (one row per text: new model, old model), the
    settings (ranks, penalties, dev share, seed), which kinds to try, an
    optional ``scorer`` (bridge -> higher is better; default: `pair_mrr` on
    the held-out pairs) and header facts to store with the map (model names).
    Output: a `BridgeChoice` whose map is refitted on every pair.
    """
    settings = settings or MigrateSettings()
    x, y = _pairs(new, old)
    train, dev = _split(len(x), settings.bridge_dev_fraction, settings.seed)
    candidates = []
    best: tuple[float, tuple[BridgeKind, int | None, float | None]] | None = None
    for kind, rank, ridge in _candidates(settings, kinds, min(x.shape[1], y.shape[1])):
        fitted = _fit(kind, rank, ridge, x[train], y[train])
        score = scorer(fitted) if scorer is not None else pair_mrr(fitted, x[dev], y[dev])
        candidates.append(Candidate(kind, fitted.rank, ridge, float(score)))
        if best is None or score > best[0]:
            best = (float(score), (kind, rank, ridge))
    if best is None:
        raise ValueError(f"no bridge kind to try among {list(kinds)}")
    chosen = _fit(*best[1], x, y)
    facts = {**chosen.header, **(header or {}), "dev_score": best[0], "score": "scorer" if scorer else "dev pair MRR"}
    bridge = Bridge(chosen.kind, chosen.weight, chosen.bias, chosen.rank, chosen.ridge, facts)
    return BridgeChoice(bridge, tuple(candidates), str(facts["score"]), len(train), len(dev))


def search_run(
    query_vectors: np.ndarray, query_ids: Sequence[str], doc_vectors: np.ndarray, doc_ids: Sequence[str], k: int = 100
) -> Run:
    """Exact inner-product search of every query over the documents, as a run ``{query_id: {doc_id: score}}``."""
    idx, scores = exact_search(
        np.ascontiguousarray(query_vectors, dtype=np.float32), np.ascontiguousarray(doc_vectors, dtype=np.float32), k
    )
    return {
        qid: {doc_ids[int(j)]: float(s) for j, s in zip(row, row_scores, strict=True)}
        for qid, row, row_scores in zip(query_ids, idx, scores, strict=True)
    }


@dataclass(frozen=True)
class Retention:
    """A bridge's retention: the metric of bridged search, of full re-embedding, of the old model, and the ratio."""

    metric: str
    bridged: float
    full: float
    old: float | None
    retention: float
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """Return the retention as plain JSON-ready values."""
        return dict(self.__dict__)


def bridge_retention(
    bridge: Bridge,
    qrels: Qrels,
    query_ids: Sequence[str],
    new_queries: np.ndarray,
    old_docs: np.ndarray,
    new_docs: np.ndarray,
    doc_ids: Sequence[str],
    *,
    old_queries: np.ndarray | None = None,
    metric: str = "ndcg@10",
    k: int = 100,
) -> Retention:
    """Measure how much of full re-embedding quality the bridge keeps on a benchmark.

    Inputs: the bridge; the qrels; the query ids with their new-model vectors
    (and, optionally, old-model vectors, to report the old model's own
    score); the documents' old-model and new-model vectors, in ``doc_ids``
    order; the metric and the search depth.
    Output: a `Retention` with ``retention = bridged / full`` (NaN when full
    re-embedding scores 0).
    """
    bridged = evaluate(qrels, search_run(bridge.apply(new_queries), query_ids, old_docs, doc_ids, k), [metric])[metric]
    full = evaluate(qrels, search_run(normalize_rows(new_queries), query_ids, new_docs, doc_ids, k), [metric])[metric]
    old = None
    if old_queries is not None:
        old = evaluate(qrels, search_run(normalize_rows(old_queries), query_ids, old_docs, doc_ids, k), [metric])[
            metric
        ]
    ratio = bridged / full if full > 0 else math.nan
    return Retention(metric, bridged, full, old, ratio, bridge.kind)
