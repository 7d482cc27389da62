"""Measured probes: how fast this machine encodes documents and queries and takes a training step.

Nothing here is a formula from a spec sheet: each rate comes from timing the
real model on the user's own texts.

- documents: a seeded sample is encoded (longest first, in batches, as every
  stage encodes); the rate is seconds per *padded* token, so the cost of any
  set of documents follows from its token lengths (`Probe.document_seconds`);
- queries: a sample of queries encoded the same way, in seconds per query;
- training: a few real optimiser steps (MultipleNegativesRankingLoss over
  batches of (query, positive, negative) at the training window) on a copy
  of the base model; the first step (warm-up) is left out. The batches are
  formed from a sample of the training triples the way the trainer forms
  them (`domainfit.train.speed.grouped_batches` for ``batch_grouping =
  "length"``, plain shuffled batches otherwise), and the step time is
  seconds per *padded* token (median over the timed steps) times the mean
  padded tokens of a full batch of the sample (`step_estimate`), so the
  few timed batches stand for all of them.

Example::

    probe = measure_probe(model_name, documents, queries, pairs, batch_size=32, window=256, train_window=128,
                          train_batch_size=32, batch_grouping="length")
    probe.document_seconds(lengths)  # seconds to encode documents of these token lengths
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from domainfit.data.truncation import token_lengths as tokenize_lengths
from domainfit.train.speed import GROUP, grouped_batches, text_lengths

T = TypeVar("T")

#: Texts each encoding probe times.
PROBE_TEXTS = 64
#: Texts whose token lengths describe a corpus.
LENGTH_SAMPLE = 2000


@dataclass
class Probe:
    """Rates measured on this machine, and the basis of each."""

    seconds_per_token: float
    seconds_per_query: float
    seconds_per_token_long: float
    short_length: float
    long_length: float
    seconds_per_step: float
    seconds_per_bm25_document: float
    seconds_per_bm25_query: float
    bm25_documents: int
    batch_size: int
    window: int
    train_window: int
    model_load_seconds: float
    basis: str
    #: How the timed training batches were formed: "length" (grouped as the trainer groups them) or "none"
    #: (shuffled; also every probe saved before the probe grouped batches).
    batch_grouping: str = "none"
    #: Mean padded tokens of a full training batch over the probe's sample (None: not recorded, an older probe).
    step_padded_tokens: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form kept in the plan."""
        return asdict(self)

    def document_seconds(self, lengths: Sequence[int], n_documents: int, window: int | None = None) -> float:
        """Seconds to encode ``n_documents`` whose token lengths are like the sample ``lengths``.

        Documents are encoded longest first, so padding is negligible: the cost is
        the sum of their lengths cut at ``window`` (default: the probe's), each
        token at the rate measured for texts of that length (`token_rate`).
        """
        if n_documents <= 0 or not lengths:
            return 0.0
        cap = window or self.window
        total = sum(min(n, cap) * self.token_rate(min(n, cap)) for n in lengths)
        return n_documents * total / len(lengths)

    def bm25_search_seconds(self, n_queries: int, n_documents: int) -> float:
        """Seconds for ``n_queries`` BM25 searches over ``n_documents`` (search time grows with the corpus)."""
        return n_queries * self.seconds_per_bm25_query * max(1.0, n_documents / max(1, self.bm25_documents))

    def token_rate(self, length: float) -> float:
        """Seconds per token for texts of ``length`` tokens: linear between the two measured lengths.

        Attention grows with length, so a token of a long text costs more than
        one of a short text; outside the measured lengths the line is
        extended, never below half the short texts' rate.
        """
        span = self.long_length - self.short_length
        if span <= 1:
            return self.seconds_per_token
        slope = (self.seconds_per_token_long - self.seconds_per_token) / span
        return max(self.seconds_per_token / 2, self.seconds_per_token + slope * (length - self.short_length))


def sample(texts: Sequence[T], n: int, seed: int) -> list[T]:
    """Return a seeded sample of at most ``n`` of ``texts`` (all when fewer), in input order."""
    if len(texts) <= n:
        return list(texts)
    return [texts[i] for i in sorted(random.Random(seed).sample(range(len(texts)), n))]


def _timed_encode(model: Any, texts: list[str], batch_size: int) -> float:
    """Seconds to encode ``texts`` (after a short warm-up)."""
    model.encode(texts[:2], batch_size=batch_size, show_progress_bar=False)
    start = time.perf_counter()
    model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    return time.perf_counter() - start


def _padded_tokens(lengths: list[int], batch_size: int, window: int) -> int:
    """Tokens the encoder computes for texts of ``lengths``, longest first, padded to each batch's longest."""
    ordered = sorted((min(n, window) for n in lengths), reverse=True)
    return sum(ordered[i] * len(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size))


def _bm25_seconds(documents: list[str], queries: list[str]) -> tuple[float, float]:
    """Return (seconds per document to index, seconds per query to search) with the stages' BM25."""
    from domainfit.retrieval.lexical import BM25Retriever

    start = time.perf_counter()
    bm25 = BM25Retriever()
    bm25.index_texts([str(i) for i in range(len(documents))], documents)
    indexed = time.perf_counter()
    bm25.search_texts(queries, min(100, len(documents)))
    searched = time.perf_counter()
    return (indexed - start) / max(1, len(documents)), (searched - indexed) / max(1, len(queries))


def timed_steps(model: Any, batches: Sequence[Sequence[tuple[str, str, str]]], window: int) -> list[float]:
    """Seconds of one real optimiser step over each of ``batches`` of (query, positive, negative) triples.

    The model is trained in place (MultipleNegativesRankingLoss, AdamW) at ``window`` tokens: pass a copy.
    """
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from domainfit.core.models import set_max_seq_length

    set_max_seq_length(model, window)  # a static-embedding model has no window
    model.train()
    loss = MultipleNegativesRankingLoss(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)
    times = []
    for batch in batches:
        start = time.perf_counter()
        features = [model.preprocess([row[col] for row in batch]) for col in range(3)]
        value = loss(features, torch.zeros(0))
        value.backward()
        optimiser.step()
        optimiser.zero_grad()
        times.append(time.perf_counter() - start)
    model.eval()
    return times


def _train_steps(
    model: Any, pairs: Sequence[tuple[str, str, str]], batch_size: int, window: int, steps: int
) -> list[float]:
    """Seconds of each of ``steps`` real optimiser steps over batches of ``pairs`` in their order, cycled."""
    rows = list(pairs) or [("probe", "probe", "probe")]
    batches = [[rows[(step * batch_size + i) % len(rows)] for i in range(batch_size)] for step in range(steps)]
    return timed_steps(model, batches, window)


def median_step(model: Any, pairs: Sequence[tuple[str, str, str]], batch_size: int, window: int, steps: int) -> float:
    """Median seconds of ``steps`` real optimiser steps (at least two: the first, a warm-up, is left out).

    The batches are ``pairs`` in their order, cycled (not grouped by length):
    what the levels probe compares between models (`domainfit.budget.levels`).
    """
    times = _train_steps(model, pairs, batch_size, window, max(2, steps))[1:]
    return sorted(times)[len(times) // 2]


@dataclass(frozen=True)
class StepEstimate:
    """A training step's estimated seconds and what they rest on."""

    seconds: float  # seconds_per_token x padded_tokens
    padded_tokens: float  # mean padded tokens of a full batch of the sample
    seconds_per_token: float  # median seconds per padded token of the timed steps
    timed_steps: int  # steps timed (the warm-up left out)
    sampled: int  # triples the batches were formed from
    grouping: str  # "length" or "none"


def probe_batches(rows: Sequence[tuple[str, ...]], batch_size: int, grouping: str, seed: int) -> list[list[int]]:
    """Return batches of row indices as training forms them: length-grouped (``"length"``) or shuffled.

    ``"length"`` is `grouped_batches` over the rows' character lengths and
    texts, as the trainer's sampler calls it; otherwise the rows are
    shuffled (seeded) and cut into batches of ``batch_size``.
    """
    if grouping == "length":
        return grouped_batches(text_lengths(rows), [tuple(r) for r in rows], batch_size, seed)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def batch_padded_tokens(batch: Sequence[int], column_lengths: Sequence[Sequence[int]], window: int) -> int:
    """Tokens a batch computes: per text column, the batch size times its longest token length cut at ``window``."""
    return sum(len(batch) * min(window, max(lengths[i] for i in batch)) for lengths in column_lengths)


def step_estimate(
    model: Any,
    pairs: Sequence[tuple[str, str, str]],
    batch_size: int,
    window: int,
    steps: int,
    *,
    grouping: str,
    seed: int,
) -> StepEstimate:
    """Estimate a training step's seconds on batches formed the way training forms them.

    Inputs: the model (trained in place: pass a copy), the training triples
    (query, positive, negative), the training batch and window, the steps to
    time (at least two: the first, a warm-up, is left out), the grouping
    (``"length"`` or ``"none"``) and the seed. A seeded sample of at most
    ``batch_size x GROUP`` triples (one mega-batch of the grouping) is cut
    into batches with `probe_batches`; ``steps`` of its full batches are
    timed. Output: the median seconds per padded token of the timed steps
    times the mean padded tokens of a full batch of the sample.
    """
    rows = sample(pairs, batch_size * GROUP, seed)
    # nothing to sample: one batch of a placeholder triple, repeated (grouping would split its copies)
    rows = rows or [("probe", "probe", "probe")] * batch_size
    columns = [tokenize_lengths(model.tokenizer, [row[col] for row in rows]) for col in range(3)]
    batches = probe_batches(rows, batch_size, grouping if pairs else "none", seed)
    full = [b for b in batches if len(b) == batch_size] or batches  # a sample under one batch: its one batch
    tokens = [batch_padded_tokens(b, columns, window) for b in full]
    timed = [full[i % len(full)] for i in range(max(2, steps))]
    times = timed_steps(model, [[rows[i] for i in b] for b in timed], window)
    warm = zip(times[1:], timed[1:], strict=True)  # the first step is a warm-up
    rates = sorted(t / max(1, batch_padded_tokens(b, columns, window)) for t, b in warm)
    rate = rates[len(rates) // 2]
    mean_tokens = sum(tokens) / len(tokens)
    return StepEstimate(rate * mean_tokens, mean_tokens, rate, len(rates), len(rows), grouping)


def seconds_per_text(model: Any, texts: list[str], batch_size: int = 32) -> float:
    """Seconds per text to encode ``texts`` (after a short warm-up)."""
    return _timed_encode(model, texts, batch_size) / max(1, len(texts))


def measure_probe(
    model_name: str,
    documents: Sequence[str],
    queries: Sequence[str],
    pairs: Sequence[tuple[str, str, str]],
    *,
    batch_size: int,
    window: int,
    train_window: int,
    train_batch_size: int,
    batch_grouping: str,
    seed: int = 13,
    steps: int = 4,
) -> Probe:
    """Time the base model on samples of the user's documents, queries and training pairs.

    Inputs: the model name or folder, the corpus texts, the query texts, the
    training triples (query, positive, negative), the encoding batch and
    window, the training window, batch and batch grouping (``[train]
    batch_grouping``: ``"length"`` or ``"none"``), the seed and the training
    steps to time (the first is a warm-up, left out; see `step_estimate`).
    Output: a `Probe`.
    """
    from domainfit.core.models import load_bi_encoder

    load_bi_encoder(model_name)  # the first load also imports and reads from disk: every stage after it is warm
    start = time.perf_counter()
    model = load_bi_encoder(model_name)
    loaded = time.perf_counter() - start
    model.max_seq_length = window
    pool = sample(documents, LENGTH_SAMPLE, seed) or ["probe"]
    pool_lengths = tokenize_lengths(model.tokenizer, pool)
    by_length = sorted(range(len(pool)), key=lambda i: -pool_lengths[i])
    half = PROBE_TEXTS // 2
    groups = []
    for picked in (sample(range(len(pool)), half, seed), by_length[:half]):  # typical documents, then the longest
        texts, lengths = [pool[i] for i in picked], [min(pool_lengths[i], window) for i in picked]
        seconds = _timed_encode(model, texts, batch_size)
        groups.append((seconds / max(1, _padded_tokens(lengths, batch_size, window)), sum(lengths) / len(lengths)))
    (per_token, short), (per_token_long, long) = groups
    asked = sample(queries, PROBE_TEXTS, seed) or ["probe"]
    per_query = seconds_per_text(model, asked, batch_size)
    per_bm25, per_bm25_query = _bm25_seconds(pool, asked)
    step = step_estimate(model, pairs, train_batch_size, train_window, steps, grouping=batch_grouping, seed=seed)
    batches = "length-grouped" if step.grouping == "length" else "shuffled"
    return Probe(
        seconds_per_token=per_token,
        seconds_per_query=per_query,
        seconds_per_token_long=per_token_long,
        short_length=round(short, 1),
        long_length=round(long, 1),
        seconds_per_step=step.seconds,
        seconds_per_bm25_document=per_bm25,
        seconds_per_bm25_query=per_bm25_query,
        bm25_documents=len(pool),
        batch_size=batch_size,
        window=window,
        train_window=train_window,
        model_load_seconds=round(loaded, 2),
        basis=(
            f"encoded {2 * half} documents (typical and longest) and {len(asked)} queries of this corpus and timed "
            f"{step.timed_steps} training steps (batch {train_batch_size}, {train_window} tokens, {batches} "
            f"batches of {step.sampled} sampled training pairs, {step.padded_tokens:.0f} padded tokens a step) "
            "on this machine"
        ),
        batch_grouping=step.grouping,
        step_padded_tokens=step.padded_tokens,
    )


def corpus_lengths(model_name: str, documents: Sequence[str], seed: int = 13) -> list[int]:
    """Return the token lengths of a seeded sample of at most 2,000 ``documents`` (the base model's tokenizer)."""
    from domainfit.core.models import load_bi_encoder

    return tokenize_lengths(load_bi_encoder(model_name).tokenizer, sample(documents, LENGTH_SAMPLE, seed))
