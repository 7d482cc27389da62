"""Per-stage time estimates from what a run will do (`Workload`) and the rates measured here (`Probe`).

Each stage's estimate is the sum of named parts (encoding the corpus with
one model, the queries of two splits, the training steps, the evaluations
during training, ...), each from a count and a measured rate, so the plan can
say where its minutes go. Parts that do not encode or train (BM25, search,
the compression sweep, writing files) are a measured rate per document or
query too (`Probe.seconds_per_bm25_document` and the constants below, which
are the measured cost per document or query on a two-core machine and scale
with the probe's encoding speed).

Example::

    stages = estimate_stages(workload, probe)
    sum(s.seconds for s in stages)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.budget.levels import PROBE_BATCH, PROBE_STEPS
from domainfit.budget.probe import Probe

#: Synthetic queries the offline generators keep per source document (measured: demo 3.6, long pages 1.7).
SYNTHETIC_PER_DOCUMENT = 3.0
#: Seconds per document token the reference machine (two cores) encodes at: the constants below were
#: measured there and scale with this machine's measured speed (`_speed`).
REFERENCE_TOKEN_SECONDS = 1.6e-4
#: Scoring every system on one judged query (metrics, runs, fusions, the convex weight's tuning; bench, eval):
#: measured 12 ms a query on the demo, where the corpus is small.
SCORE_QUERY_SECONDS = 1.2e-2
#: The part of scoring that grows with the corpus, per query and document (exact dense search and BM25
#: scoring): measured 1.5e-8 s for the dense product and 1.4e-8 s for BM25 on 3,197 queries x 45,332
#: documents, with the tuning split's searches on top.
SCORE_PAIR_SECONDS = 6e-8
#: The levels probe of ``decide`` (before training, `domainfit.budget.levels`) trains `PROBE_STEPS` steps
#: of `PROBE_BATCH` with three models: the full and the top-layers one cost about a full step each and
#: the static one almost nothing; it encodes `LEVEL_PROBE_TEXTS` documents twice and as many queries.
LEVEL_PROBE_MODELS = 2.2
LEVEL_PROBE_TEXTS = 32
#: Search, false-negative filtering and curriculum per mined pair: a fixed part and a part per token of the
#: corpus' (window-cut) documents (measured: 5.8 ms a pair on the demo, 9.5 ms on long pages).
MINE_PAIR_SECONDS = 3.8e-3
MINE_PAIR_TOKEN_SECONDS = 2.2e-5
#: Token length of a general-domain text of the forgetting check (short passages).
GENERAL_TEXT_TOKENS = 64
#: Setting up one pilot's trainer (model, data, optimiser) and tearing it down.
PILOT_SETUP_SECONDS = 12.0
#: The compression sweep's fixed part (quantiser training, latency runs of 100 queries per point).
COMPRESS_FIXED_SECONDS = 20.0
#: The compression sweep's part per corpus document (every point scores the test queries against it;
#: measured: 45,332 documents took 355 s on a shared machine, the demo's 2,209 took 27 s).
COMPRESS_DOCUMENT_SECONDS = 5e-3
#: The index stage's fixed part (open the store, build the full-text index, tag, one sample search).
INDEX_FIXED_SECONDS = 3.0
#: The index stage's part per document (hash, write, commit; the vectors come from eval's embedding cache).
INDEX_DOCUMENT_SECONDS = 1e-3
#: Texts of a step (query, positive, one negative): a step with n negatives costs about (2 + n) / 3 of the probe's.
PROBE_TEXTS_PER_EXAMPLE = 3


@dataclass
class Workload:
    """What a run will do, counted from the data and the config before it starts.

    ``lengths``: token lengths of a sample of documents (base tokenizer);
    ``queries``: judged queries per split; ``synthetic``: synthetic pairs mine
    will read (estimated before synth runs, counted after); ``train_steps`` and
    ``train_evaluations``: the full run's; ``pilot_steps``: the steps every
    pilot of the recipe search trains in total (successive halving included),
    ``pilot_evaluations`` their dev evaluations; ``pool_documents``: documents
    an evaluation during training (or a pilot's) encodes; ``eval_queries``: the
    dev queries an evaluation during training scores, and ``eval_pool_per_query``
    the pool's documents per such query (None: the pool does not shrink with
    them, the full corpus).
    """

    documents: int
    lengths: list[int]
    queries: dict[str, int]
    labelled: int
    synthetic: int
    source_documents: int
    general_texts: int
    bench_models: int
    window: int
    train_window: int
    train_steps: int
    train_evaluations: int
    eval_pool_documents: int
    eval_queries: int = 0
    eval_pool_per_query: float | None = None
    negatives: int = 1
    pilots: int = 0
    pilot_steps: int = 0
    pilot_evaluations: int = 0
    pilot_pool_documents: int = 0
    pilot_queries: int = 0
    compress: bool = True
    index: bool = True
    llm_queries: bool = False
    levels: bool = False


@dataclass
class StageEstimate:
    """One stage's estimated seconds and the parts they come from."""

    stage: str
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form kept in the plan."""
        return asdict(self)


def _stage(name: str, parts: dict[str, float]) -> StageEstimate:
    """Return the estimate of ``name`` as the sum of its non-zero ``parts`` (rounded to 0.1 s)."""
    kept = {k: round(v, 1) for k, v in parts.items() if v > 0}
    return StageEstimate(name, round(sum(parts.values()), 1), kept)


def step_seconds(probe: Probe, negatives: int) -> float:
    """Seconds of one training step with ``negatives`` hard negatives per example (the probe used one)."""
    return probe.seconds_per_step * (2 + negatives) / PROBE_TEXTS_PER_EXAMPLE


def estimate_stages(work: Workload, probe: Probe) -> list[StageEstimate]:
    """Return the estimate of every stage ``run`` will run, in loop order.

    Inputs: the workload and the probe. Output: one `StageEstimate` per stage
    (bench, decide, synth, mine, recipe, train, eval, decide, compress, index, report).
    """
    load = probe.model_load_seconds
    speed = probe.seconds_per_token / REFERENCE_TOKEN_SECONDS
    corpus = probe.document_seconds(work.lengths, work.documents, work.window)
    per_query = probe.seconds_per_query
    per_bm25 = probe.seconds_per_bm25_document
    judged = work.queries.get("test", 0) + work.queries.get("dev", 0)
    pairs = work.labelled + work.synthetic
    step = step_seconds(probe, work.negatives)
    pilot_eval = probe.document_seconds(work.lengths, work.pilot_pool_documents, work.train_window)
    train_eval = probe.document_seconds(work.lengths, work.eval_pool_documents, work.train_window)
    general = probe.document_seconds([GENERAL_TEXT_TOKENS], work.general_texts, work.window)
    mean_tokens = sum(min(n, work.window) for n in work.lengths) / max(1, len(work.lengths))
    score = judged * (SCORE_QUERY_SECONDS + work.documents * SCORE_PAIR_SECONDS) * speed
    levels = 0.0
    if work.levels:
        batch_step = probe.seconds_per_step * PROBE_BATCH / max(1, probe.batch_size)
        levels = PROBE_STEPS * LEVEL_PROBE_MODELS * batch_step + 2 * load
        levels += probe.document_seconds(work.lengths, 2 * LEVEL_PROBE_TEXTS, work.train_window)
        levels += LEVEL_PROBE_TEXTS * per_query
    out = [
        _stage(
            "bench",
            {
                "load models": load * work.bench_models,
                "encode corpus": corpus * work.bench_models,
                "encode queries": judged * per_query * work.bench_models,
                "bm25": work.documents * per_bm25 + probe.bm25_search_seconds(judged, work.documents),
                "score systems": score,
            },
        ),
        _stage(
            "decide",
            {
                "load model": load,
                "probe": probe.document_seconds(work.lengths, 32, work.window),
                "levels probe": levels,
            },
        ),
        _stage(
            "synth",
            {
                "generate": 1.0 + work.source_documents * per_bm25 * 4,
                "round trip": probe.bm25_search_seconds(work.synthetic, work.documents),
            },
        ),
        _stage(
            "mine",
            {
                "load model": load,
                "encode queries": pairs * per_query,
                "bm25": work.documents * per_bm25 + probe.bm25_search_seconds(pairs, work.documents),
                "search and filter": pairs * (MINE_PAIR_SECONDS + mean_tokens * MINE_PAIR_TOKEN_SECONDS) * speed,
            },
        ),
        _stage(
            "recipe",
            {
                "load models": load * (1 + work.pilots),
                "set up pilots": work.pilots * PILOT_SETUP_SECONDS * speed,
                "pilot steps": work.pilot_steps * step,
                "pilot evaluations": work.pilot_evaluations * (pilot_eval + work.pilot_queries * per_query),
            },
        ),
        _stage(
            "train",
            {
                "load model": load,
                "steps": work.train_steps * step,
                "evaluations": work.train_evaluations * (train_eval + work.eval_queries * per_query),
            },
        ),
        _stage(
            "eval",
            {
                "load models": 2 * load,
                "encode corpus": corpus,
                "encode queries": judged * per_query,  # the base model's are cached since bench
                "forgetting set": 2 * general,
                "score systems": 2 * score,
            },
        ),
        _stage("decide", {"read": 1.0}),
    ]
    if work.compress:
        sweep = (COMPRESS_FIXED_SECONDS + work.documents * COMPRESS_DOCUMENT_SECONDS) * speed
        queries = work.queries.get("test", 0) * per_query
        out.append(_stage("compress", {"load model": load, "encode queries": queries, "sweep": sweep}))
    if work.index:
        write = (INDEX_FIXED_SECONDS + work.documents * INDEX_DOCUMENT_SECONDS) * speed
        out.append(_stage("index", {"load model": load, "write": write}))
    out.append(_stage("report", {"render": 5.0}))
    return out
