"""Measured time of each level of effort on this machine: a short probe of the real work each level does.

Per level, what is timed (the rest follows from the data's sizes):

- ``full``: real MultipleNegativesRankingLoss optimiser steps of the base model
  (`domainfit.budget.probe`), at a small probe batch, scaled to the training batch;
- ``top-layers``: the same steps with all but the top N layers frozen;
- ``static``: the same steps on a static-embedding model over the base model's
  tokenizer (its table is random: only its speed counts here), plus distillation
  (the vocabulary encoded by the base model, one token per text) when distilling;
- ``adapter``: encoding every training text once with the base model (the
  adapter's own epochs over vectors take well under a second);
- ``prompts``: encoding the dev pool once per candidate document prompt and the
  dev queries once per query prompt.

Re-indexing is every document at the measured encoding speed of the level's
model, except for the adapter (no stored vector changes) and prompts (none
when the chosen document prompt is empty, which the estimate assumes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from domainfit.budget.probe import median_step, sample, seconds_per_text

#: Batch of the step probes (step time is scaled linearly to the training batch).
PROBE_BATCH = 8
#: Steps per probe (the first is a warm-up, left out).
PROBE_STEPS = 3


@dataclass
class LevelTimes:
    """Seconds measured on this machine, the basis of the per-level estimates."""

    full_step: float
    top_step: float
    top_layers: int
    static_step: float
    per_document: float
    per_query: float
    per_static_document: float
    per_vocab_token: float
    vocab_size: int
    batch_size: int
    basis: str

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form kept in the decision."""
        return asdict(self)


def _median_step(model: Any, triples: Sequence[tuple[str, str, str]], window: int) -> float:
    """Median seconds of the probe's steps (the warm-up left out)."""
    return median_step(model, triples, PROBE_BATCH, window, PROBE_STEPS)


def measure_level_times(
    model_name: str,
    documents: Sequence[str],
    queries: Sequence[str],
    triples: Sequence[tuple[str, str, str]],
    *,
    window: int,
    batch_size: int,
    top_layers: int,
    seed: int = 13,
) -> LevelTimes:
    """Time the levels' work on samples of the user's texts (see the module docstring).

    Inputs: the base model, corpus texts, query texts, training triples (query,
    positive, negative), the training window and batch, the N of ``top-layers``
    and the seed. Output: `LevelTimes` (step times already scaled to ``batch_size``).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    from domainfit.core.models import load_bi_encoder, set_max_seq_length
    from domainfit.train.levels import freeze_below_top, layer_count

    rows = sample(triples, PROBE_BATCH * PROBE_STEPS, seed) or [("probe", "probe", "probe")]
    scale = batch_size / PROBE_BATCH
    model = load_bi_encoder(model_name)
    set_max_seq_length(model, window)
    docs = sample(documents, 32, seed) or ["probe"]
    asked = sample(queries, 32, seed) or ["probe"]
    per_document, per_query = seconds_per_text(model, docs), seconds_per_text(model, asked)
    vocab = list(model.tokenizer.get_vocab())
    per_token = seconds_per_text(model, sample(vocab, 64, seed))
    full = _median_step(model, rows, window) * scale
    n = min(max(1, top_layers), layer_count(model))
    frozen = load_bi_encoder(model_name)
    freeze_below_top(frozen, n)
    top = _median_step(frozen, rows, window) * scale
    static = SentenceTransformer(
        modules=[StaticEmbedding(model.tokenizer, embedding_dim=256), Normalize()], device="cpu"
    )
    static_step = _median_step(static, rows, window) * scale
    per_static = seconds_per_text(static, docs)
    return LevelTimes(
        full_step=full,
        top_step=top,
        top_layers=n,
        static_step=static_step,
        per_document=per_document,
        per_query=per_query,
        per_static_document=per_static,
        per_vocab_token=per_token,
        vocab_size=len(vocab),
        batch_size=batch_size,
        basis=(
            f"timed {PROBE_STEPS - 1} steps (batch {PROBE_BATCH} scaled to {batch_size}, {window} tokens) of the full, "
            f"top-{n} and static models, and encoding {len(docs)} documents and {len(asked)} queries, on this machine"
        ),
    )
