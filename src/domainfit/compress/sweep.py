"""Evaluate every compression configuration against float32 at full dimension.

Input: unit-length float32 document and query embeddings of one model, their
ids, the qrels and a `CompressConfig`. For each configuration of the grid
(`domainfit.compress.spec.enumerate_variants`) the sweep builds the index,
retrieves ``depth`` documents per query, computes the metrics (through
`domainfit.evaluation.metrics.evaluate`), their retention against the
reference, the sizes (per vector, measured for the corpus, projected) and the
latency. Output: a `SweepOutput`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from domainfit.compress.config import CompressConfig
from domainfit.compress.latency import limited_threads, measure_latency
from domainfit.compress.pipeline import CompressedIndex, build_index
from domainfit.compress.quantize import load_quantizer
from domainfit.compress.reduce import PCA
from domainfit.compress.spec import VariantSpec, enumerate_variants
from domainfit.core.progress import progress_bar
from domainfit.core.types import Qrels, Run
from domainfit.evaluation.metrics import evaluate


@dataclass
class VariantResult:
    """Everything measured for one configuration (one row of ``results.json``)."""

    name: str
    family: str
    reduction: str
    dim: int
    store: str
    rescore: str | None
    oversample: int
    metrics: dict[str, float]
    retention: dict[str, float | None]
    bytes_per_vector: float
    rescore_bytes_per_vector: float
    compression_ratio: float
    fixed_bytes: int
    index_bytes: int
    projected_bytes: dict[str, int]
    latency: dict[str, Any]
    build_seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    pareto: bool = False
    frontier_2d: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VariantResult:
        """Rebuild from the plain-dict form."""
        return cls(**data)


@dataclass
class SweepOutput:
    """The evaluated configurations (reference first) and notes on what was skipped or is worth knowing."""

    variants: list[VariantResult]
    notes: list[str]


def to_run(ids: np.ndarray, scores: np.ndarray, doc_ids: list[str], query_ids: list[str]) -> Run:
    """Turn search output (nq, k) into a run ``{qid: {doc_id: score}}``, dropping ids of -1."""
    return {
        qid: {doc_ids[int(i)]: float(s) for i, s in zip(ids[row], scores[row], strict=True) if i >= 0}
        for row, qid in enumerate(query_ids)
    }


def _retention(metrics: dict[str, float], reference: dict[str, float]) -> dict[str, float | None]:
    """Each metric divided by the reference's (None when the reference is 0)."""
    return {m: (round(v / reference[m], 6) if reference[m] > 0 else None) for m, v in metrics.items()}


def _details(index: CompressedIndex, config: CompressConfig) -> dict[str, Any]:
    """Knobs worth recording for one index: PCA variance kept, IVF lists and probes."""
    out: dict[str, Any] = {}
    if isinstance(index.reducer, PCA):
        out["pca_explained_variance"] = round(index.reducer.explained_variance_ratio, 4)
    if index.nlist is not None:
        out["nlist"] = index.nlist
        out["nprobe"] = min(config.ivf_nprobe, index.nlist)
    return out


def evaluate_variant(
    spec: VariantSpec,
    docs: np.ndarray,
    queries: np.ndarray,
    doc_ids: list[str],
    query_ids: list[str],
    qrels: Qrels,
    config: CompressConfig,
    reference: dict[str, float] | None,
) -> tuple[VariantResult, Run]:
    """Build, search, score, size and time one configuration.

    ``reference`` holds the reference metrics (None while evaluating the
    reference itself). Returns the result and the run.
    """
    index = build_index(spec, docs, nlist=config.ivf_nlist, nprobe=config.ivf_nprobe, seed=config.seed)
    ids, scores = index.search(queries, config.depth)
    run = to_run(ids, scores, doc_ids, query_ids)
    metrics = {m: round(v, 6) for m, v in evaluate(qrels, run, config.metrics).items()}
    latency = measure_latency(
        index.search,
        queries,
        config.depth,
        batch_size=config.latency_batch_size,
        single_queries=config.latency_queries,
        repeats=config.latency_repeats,
        seed=config.seed,
    )
    full_bytes = 4.0 * docs.shape[1]
    result = VariantResult(
        name=spec.name,
        family=spec.family,
        reduction=spec.reduction,
        dim=spec.dim,
        store=spec.store,
        rescore=spec.rescore,
        oversample=spec.oversample,
        metrics=metrics,
        retention=_retention(metrics, reference or metrics),
        bytes_per_vector=index.bytes_per_vector,
        rescore_bytes_per_vector=index.rescore_bytes_per_vector,
        compression_ratio=round(full_bytes / index.bytes_per_vector, 3),
        fixed_bytes=index.fixed_bytes,
        index_bytes=index.index_bytes(),
        projected_bytes={str(n): index.projected_bytes(n) for n in config.projected_vectors},
        latency=latency.to_json(),
        build_seconds=round(index.build_seconds, 4),
        details=_details(index, config),
    )
    return result, run


def _training_notes(specs: list[VariantSpec], n_docs: int) -> list[str]:
    """Warn when PQ codebooks were trained on fewer vectors than FAISS recommends (39 per centroid)."""
    notes = []
    for nbits in sorted({s.pq_nbits for s in specs if s.store in ("pq", "ivfpq")}):
        if n_docs < 39 * 2**nbits:
            notes.append(
                f"PQ codebooks with {2**nbits} centroids were trained on only {n_docs} vectors "
                f"(FAISS recommends {39 * 2**nbits}); PQ quality on a larger corpus may differ"
            )
    return notes


def _rescore_notes(specs: list[VariantSpec], depth: int, n_docs: int) -> list[str]:
    """Say what share of the corpus rescoring reads: on a small corpus it is large, so rescoring looks better."""
    overs = sorted({s.oversample for s in specs if s.rescore})
    if not overs:
        return []
    shares = ", ".join(f"x{o}: {min(depth * o, n_docs)} ({min(depth * o, n_docs) / n_docs:.1%})" for o in overs)
    return [
        f"rescoring reads depth × oversample candidates per query, here {shares} of the {n_docs} documents; "
        "on a larger corpus the same number of candidates is a far smaller share, so rescored retention "
        "measured here is optimistic for a larger corpus"
    ]


def run_sweep(
    docs: np.ndarray,
    queries: np.ndarray,
    doc_ids: list[str],
    query_ids: list[str],
    qrels: Qrels,
    config: CompressConfig,
    *,
    specs: list[VariantSpec] | None = None,
) -> SweepOutput:
    """Evaluate every configuration of the grid (or the given ``specs``; the first is the reference).

    Inputs: document embeddings (n, D) and query embeddings (nq, D), both
    unit-length float32, their ids (in the same order), the qrels and the config.
    Output: a `SweepOutput` with one `VariantResult` per configuration.
    """
    notes: list[str] = []
    if specs is None:
        specs, notes = enumerate_variants(config, docs.shape[1], docs.shape[0])
    notes += _training_notes(specs, docs.shape[0]) + _rescore_notes(specs, config.depth, docs.shape[0])
    load_quantizer()
    results: list[VariantResult] = []
    reference: dict[str, float] | None = None
    with limited_threads(config.threads), progress_bar("compression configurations", len(specs)) as advance:
        for spec in specs:
            result, _ = evaluate_variant(spec, docs, queries, doc_ids, query_ids, qrels, config, reference)
            if reference is None:
                reference = result.metrics
            results.append(result)
            advance(1)
    return SweepOutput(results, notes)
