"""Calibration: similarity thresholds from labelled (query, document) pairs, by F-beta.

For each judged query of the calibration split the pairs are: every relevant
document (qrels grade > 0) labelled 1; the ``hard_negatives`` top-ranked
non-relevant documents the model retrieves (float32, full dimension) and
``random_negatives`` random non-relevant documents, labelled 0. For each model
and each compression configuration the pairs are scored the way that
configuration scores them, and the threshold maximising F-beta is chosen
(`domainfit.compress.threshold`). Reported with it: precision, recall and the
empty-result rate (share of queries whose best document in the whole corpus
scores below the threshold), on the calibration split and on ``eval_split``
when set. Thresholds move when the model or the configuration changes; the
output gives each move against the model's first configuration and against
the first model.

The ``calibrate`` stage over a workspace is `domainfit.stages.calibrate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domainfit.compress.config import CalibrateConfig
from domainfit.core.errors import InputError, UsageError
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.compress.embed import EncodedCorpus, EncodedQueries
    from domainfit.compress.spec import VariantSpec


@dataclass
class PairSet:
    """Labelled pairs, one row per query: document rows (padded with -1) and labels (1 relevant, 0 not)."""

    query_ids: list[str]
    rows: np.ndarray
    labels: np.ndarray

    def valid(self) -> np.ndarray:
        """Mask of real (non-padding) pairs."""
        return self.rows >= 0

    @property
    def n_pairs(self) -> int:
        """Number of real pairs."""
        return int(self.valid().sum())


def build_pairs(
    queries: EncodedQueries,
    corpus: EncodedCorpus,
    ranked: np.ndarray,
    hard_negatives: int,
    random_negatives: int,
    seed: int,
) -> PairSet:
    """Positives, hard negatives (from ``ranked``, each query's documents best first) and random negatives.

    Queries with no relevant document in the corpus are left out.
    """
    position = {doc_id: i for i, doc_id in enumerate(corpus.doc_ids)}
    rng = np.random.default_rng(seed)
    kept, per_query = [], []
    for row, qid in enumerate(queries.query_ids):
        positives = [position[d] for d, g in queries.qrels.get(qid, {}).items() if g > 0 and d in position]
        if not positives:
            continue
        taken = set(positives)
        hard = [int(i) for i in ranked[row] if i >= 0 and int(i) not in taken][:hard_negatives]
        taken.update(hard)
        pool = np.setdiff1d(np.arange(len(corpus.doc_ids)), np.fromiter(taken, dtype=np.int64))
        randoms = rng.choice(pool, size=min(random_negatives, pool.size), replace=False).tolist()
        kept.append(row)
        per_query.append((positives, hard + randoms))
    width = max((len(p) + len(n) for p, n in per_query), default=0)
    rows = np.full((len(kept), width), -1, dtype=np.int64)
    labels = np.zeros((len(kept), width), dtype=np.int8)
    for i, (positives, negatives) in enumerate(per_query):
        rows[i, : len(positives) + len(negatives)] = positives + negatives
        labels[i, : len(positives)] = 1
    return PairSet([queries.query_ids[r] for r in kept], rows, labels)


@dataclass
class ConfigCalibration:
    """The calibrated threshold of one (model, configuration) and how far it moved."""

    configuration: str
    threshold: float
    precision: float
    recall: float
    f_beta: float
    n_positive: int
    n_negative: int
    empty_rate: float
    delta_vs_reference: float = 0.0
    delta_vs_first_model: float | None = None
    held_out: dict[str, Any] | None = None
    curve: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class ModelCalibration:
    """Every configuration's calibration for one model."""

    model: str
    fingerprint: str
    n_queries: int
    n_pairs: int
    configurations: list[ConfigCalibration]


@dataclass
class CalibrateResult:
    """What ``calibrate`` measured; also the content of ``thresholds.json``."""

    split: str
    eval_split: str | None
    beta: float
    models: list[ModelCalibration]
    notes: list[str]
    output_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrateResult:
        """Rebuild a result from ``thresholds.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"thresholds.json format_version {data.get('format_version')!r} is not 1")
        fields = {k: v for k, v in data.items() if k != "format_version"}
        fields["models"] = [
            ModelCalibration(**{**m, "configurations": [ConfigCalibration(**c) for c in m["configurations"]]})
            for m in data["models"]
        ]
        return cls(**fields)


def threshold_for_model(path: Path, model: str, configuration: str | None = None) -> float | None:
    """Return the threshold ``thresholds.json`` at ``path`` gives ``model`` (by name or folder) at ``configuration``.

    ``configuration``: how the vectors are stored (None: full precision); one
    calibrate did not calibrate gives the full-precision threshold, and a model
    without that its first one. None when the file is absent or unreadable, or
    does not calibrate this model.
    """
    import json

    from domainfit.compress.spec import FULL_PRECISION
    from domainfit.core.models import ModelNotFoundError, resolve_model

    if not path.is_file():
        return None
    try:
        result = CalibrateResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None

    def where(name: str) -> Path | None:
        try:
            return resolve_model(name).path.resolve()
        except ModelNotFoundError:
            return None

    target = where(model)
    for entry in result.models:
        if entry.model == model or (target is not None and where(entry.model) == target):
            configs = {c.configuration: c for c in entry.configurations}
            chosen = (
                configs.get(configuration or FULL_PRECISION)
                or configs.get(FULL_PRECISION)
                or (entry.configurations[0] if entry.configurations else None)
            )
            return chosen.threshold if chosen is not None else None
    return None


@dataclass
class _Split:
    """One split's queries, pairs and flattened pair arrays."""

    queries: EncodedQueries
    pairs: PairSet


def _rows_of(queries: EncodedQueries, pairs: PairSet) -> np.ndarray:
    """Query embeddings in the order of the pair set's queries."""
    where = {qid: i for i, qid in enumerate(queries.query_ids)}
    return queries.vectors[[where[q] for q in pairs.query_ids]]


def _score_split(
    index: Any, split: _Split, threshold: float | None, beta: float, depth: int
) -> tuple[Any, float, np.ndarray]:
    """Score a split's pairs with one configuration; return (threshold result or (P, R), empty rate, scores).

    The empty-result rate uses the best score among the ``depth`` documents
    the configuration retrieves (so rescoring sees as many candidates as it would in service).
    """
    from domainfit.compress.threshold import best_threshold, empty_result_rate, precision_recall_at

    vectors = _rows_of(split.queries, split.pairs)
    scores = index.pair_scores(vectors, split.pairs.rows)
    valid = split.pairs.valid()
    flat_labels, flat_scores = split.pairs.labels[valid], scores[valid]
    _, top = index.search(vectors, depth)
    chosen = best_threshold(flat_labels, flat_scores, beta) if threshold is None else None
    cut = chosen.threshold if chosen is not None else threshold
    assert cut is not None
    empty = empty_result_rate(top[:, 0], cut)
    measured = chosen if chosen is not None else precision_recall_at(flat_labels, flat_scores, cut)
    return measured, empty, flat_scores


def calibrate_configuration(
    spec: VariantSpec, corpus: EncodedCorpus, calib: _Split, held_out: _Split | None, config: CalibrateConfig
) -> ConfigCalibration:
    """Calibrate one configuration on ``calib`` and check it on ``held_out``."""
    from domainfit.compress.pipeline import build_index
    from domainfit.compress.threshold import downsample_curve, f_beta, pr_curve

    beta, depth = config.beta, config.result_depth
    index = build_index(spec, corpus.vectors, seed=config.seed)
    chosen, empty, scores = _score_split(index, calib, None, beta, depth)
    result = ConfigCalibration(
        configuration=spec.name,
        threshold=round(chosen.threshold, 6),
        precision=round(chosen.precision, 6),
        recall=round(chosen.recall, 6),
        f_beta=round(chosen.f_beta, 6),
        n_positive=chosen.n_positive,
        n_negative=chosen.n_negative,
        empty_rate=round(empty, 6),
        curve=downsample_curve(pr_curve(calib.pairs.labels[calib.pairs.valid()], scores)),
    )
    if held_out is not None and held_out.pairs.n_pairs:
        (precision, recall), held_empty, _ = _score_split(index, held_out, chosen.threshold, beta, depth)
        result.held_out = {
            "split": held_out.queries.split,
            "n_queries": len(held_out.pairs.query_ids),
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f_beta": round(float(f_beta(np.array([precision]), np.array([recall]), beta)[0]), 6),
            "empty_rate": round(held_empty, 6),
        }
    return result


def _specs(config: CalibrateConfig, extra: list[str], full_dim: int, n_docs: int, notes: list[str]) -> list[Any]:
    """Parse the configurations (malformed names are errors; ones this corpus cannot build are skipped)."""
    from domainfit.compress.spec import parse_spec

    specs: list[VariantSpec] = []
    for name in [*config.configurations, *extra]:
        try:
            spec = parse_spec(name, full_dim)
        except UsageError as exc:
            if "configurations" in config.model_fields_set:
                raise UsageError(f"calibrate.configurations: {exc}") from None
            notes.append(f"skipped default configuration {name!r}: {exc}")
            continue
        too_small = (spec.reduction == "pca" and spec.dim > n_docs) or (
            spec.store in ("pq", "ivfpq") and n_docs < 2**spec.pq_nbits
        )
        if too_small:
            notes.append(f"skipped {spec.name}: the corpus ({n_docs} documents) is too small to train it")
        elif spec not in specs:
            specs.append(spec)
    if not specs:
        raise UsageError("no configuration to calibrate")
    return specs


def _ranked(corpus: EncodedCorpus, queries: EncodedQueries, depth: int) -> np.ndarray:
    """Each query's documents by float32 cosine, best first (exact search)."""
    from domainfit.retrieval.dense import exact_search

    ids, _ = exact_search(queries.vectors, corpus.vectors, depth)
    return ids


def _split_for(queries: EncodedQueries, corpus: EncodedCorpus, config: CalibrateConfig, extra_depth: int) -> _Split:
    """Pair each query of a split with its labelled documents."""
    ranked = _ranked(corpus, queries, config.hard_negatives + extra_depth)
    pairs = build_pairs(queries, corpus, ranked, config.hard_negatives, config.random_negatives, config.seed)
    return _Split(queries, pairs)


def calibrate_model(
    model: str,
    dataset: Any,
    cache_dir: Path,
    config: CalibrateConfig,
    notes: list[str],
    text: TextConfig = DEFAULT_TEXT,
    operating_points: Mapping[str, str] | None = None,
) -> ModelCalibration:
    """Calibrate every configuration of one model (embeddings through the cache at ``cache_dir``).

    ``operating_points``: compression configurations chosen for models by their
    fingerprint (compress's operating point); the one of this model is calibrated too.
    """
    from domainfit.compress.embed import encode_corpus, encode_split_queries, open_retriever

    retriever = open_retriever(
        model,
        cache_dir,
        batch_size=config.batch_size,
        max_seq_length=config.max_seq_length,
        text=text,
    )
    corpus = encode_corpus(dataset, retriever)
    extra_depth = max(
        (sum(1 for g in d.values() if g > 0) for q in dataset.qrels.values() for d in q.values()), default=0
    )
    calib = _split_for(encode_split_queries(dataset, config.split, retriever), corpus, config, extra_depth)
    if not calib.pairs.n_pairs:
        raise InputError(dataset.root / "qrels" / f"{config.split}.tsv", 0, "-", "no query with a relevant document")
    held_out = None
    if config.eval_split and config.eval_split in dataset.qrels:
        held_out = _split_for(encode_split_queries(dataset, config.eval_split, retriever), corpus, config, extra_depth)
    elif config.eval_split:
        notes.append(f"no '{config.eval_split}' split: thresholds are not checked on held-out queries")
    chosen = (operating_points or {}).get(retriever.fingerprint) if config.include_operating_point else None
    extra = [chosen] if chosen else []
    specs = _specs(config, extra, corpus.vectors.shape[1], len(corpus.doc_ids), notes)
    from domainfit.core.progress import progress_bar

    results = []
    with progress_bar(f"calibrating {model}", len(specs)) as advance:
        for spec in specs:
            results.append(calibrate_configuration(spec, corpus, calib, held_out, config))
            advance(1)
    for result in results:
        result.delta_vs_reference = round(result.threshold - results[0].threshold, 6)
    return ModelCalibration(model, retriever.fingerprint, len(calib.pairs.query_ids), calib.pairs.n_pairs, results)


def cross_model_deltas(models: list[ModelCalibration]) -> None:
    """Set each configuration's threshold move against the first model's same configuration."""
    first = {c.configuration: c.threshold for c in models[0].configurations} if models else {}
    for calibration in models[1:]:
        for c in calibration.configurations:
            if c.configuration in first:
                c.delta_vs_first_model = round(c.threshold - first[c.configuration], 6)
