"""Settings read from the data, each recorded with the reason it was chosen.

Each rule is a few lines, documented here and unit-tested:

* sequence length: the smallest multiple of 32 covering 90% of the positives'
  token lengths, capped at the model's window and the evaluation window; when
  even the median positive is longer than that cap, the cap, and long positives
  should be chunked to the window (the best-chunk rule);
* chunking: tried as a recipe when at least 10% of positives exceed the window;
* hard negatives: 1 with plenty of labelled pairs (1,000 or more), else 1 and 3;
* synthetic shares: with 1,000+ labelled pairs [0, 0.1], with 100-999 [0, 0.25,
  0.5], with fewer [0, 0.5, 0.75]; a share above what the synthetic queries can
  fill becomes 1.0 (every synthetic pair).

Example::

    choose_seq_length([120, 300, 410, 520], model_window=512, eval_window=256)
    # Setting(name='max_seq_length', value=256, reason='median positive is 300 tokens, over the 256-token window ...')
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from domainfit.data.truncation import token_lengths as tokenize_lengths

#: Sequence lengths are rounded up to a multiple of this.
LENGTH_STEP = 32
#: Share of positives over the window from which chunked positives are tried.
CHUNK_SHARE = 0.10
#: Labelled pairs from which data is "plentiful" (fewer synthetic, fewer negatives).
PLENTIFUL = 1000
#: Labelled pairs below which data is "very few" (more synthetic candidates).
FEW = 100
#: Texts tokenised at most to measure lengths.
MAX_SAMPLE = 2000


@dataclass(frozen=True)
class Setting:
    """One setting read from the data: its config name, value and the reason, for the report."""

    name: str
    value: Any
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Return the setting as a JSON-ready dict."""
        return asdict(self)


def percentile(values: Sequence[int], q: float) -> int:
    """Return the nearest-rank ``q`` percentile (0 < q <= 100) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def measure_token_lengths(model: Any, texts: Sequence[str], *, seed: int = 13, prompt: str = "") -> list[int]:
    """Return the token lengths (special tokens and ``prompt`` included) of a seeded sample of ``texts``.

    Inputs: a sentence-transformers model (or a Hugging Face tokenizer), the
    texts as the encoder sees them, the seed and the document prompt.
    Output: one length per sampled text (at most 2,000 texts, in input order).
    """
    tokenizer = getattr(model, "tokenizer", None) or model
    picked = sorted(random.Random(seed).sample(range(len(texts)), min(MAX_SAMPLE, len(texts))))
    return tokenize_lengths(tokenizer, [prompt + texts[i] for i in picked])


def text_cut(token_lengths: Sequence[int], window: int) -> tuple[float, float]:
    """Return what a ``window``-token cap cuts: (share of texts longer, share of all their tokens dropped)."""
    if not token_lengths:
        return 0.0, 0.0
    dropped = sum(max(0, n - window) for n in token_lengths)
    return sum(n > window for n in token_lengths) / len(token_lengths), dropped / max(1, sum(token_lengths))


def choose_seq_length(token_lengths: Sequence[int], model_window: int, eval_window: int | None) -> Setting:
    """Choose the training ``max_seq_length`` from the positives' token lengths.

    Inputs: token lengths of the training positives (`measure_token_lengths`),
    the model's window and the window evaluation reads (None: the model's).
    Output: ``Setting("max_seq_length", tokens, reason)``: the smallest multiple
    of 32 covering the p90 length, capped at min(model window, evaluation window).
    The reason says how much text the chosen length cuts (`text_cut`).
    """
    cap = min(model_window, eval_window) if eval_window else model_window
    windows = f"model window {model_window}" + (f", evaluation window {eval_window}" if eval_window else "")
    if not token_lengths:
        return Setting("max_seq_length", cap, f"no positives measured: the window ({windows})")
    p90, median = percentile(token_lengths, 90), percentile(token_lengths, 50)
    value = min(cap, LENGTH_STEP * max(1, math.ceil(p90 / LENGTH_STEP)))
    over = sum(n > cap for n in token_lengths) / len(token_lengths)
    if median > cap:
        reason = (
            f"median positive is {median} tokens, over the {cap}-token window ({windows}): train at the window "
            f"and chunk long positives to it (best chunk per query); {over:.0%} of positives are longer"
        )
    elif p90 > cap:
        reason = f"p90 positive is {p90} tokens, over the window ({windows}): train at the window; {over:.0%} longer"
    else:
        reason = f"covers 90% of positives (p90 {p90} tokens, median {median}), a multiple of 32 within {windows}"
    texts, tokens = text_cut(token_lengths, value)
    reason += f"; at {value} tokens {texts:.0%} of positives are cut, {tokens:.1%} of their tokens"
    return Setting("max_seq_length", value, reason)


def choose_chunking(token_lengths: Sequence[int], window: int) -> Setting:
    """Decide whether chunked positives are tried as recipes: when 10% or more of positives exceed ``window``.

    Output: ``Setting("try_chunking", bool, reason)``; the search then keeps chunking only if it wins on dev.
    """
    if not token_lengths:
        return Setting("try_chunking", False, "no positives measured")
    over = sum(n > window for n in token_lengths) / len(token_lengths)
    if over >= CHUNK_SHARE:
        return Setting("try_chunking", True, f"{over:.0%} of positives exceed the {window}-token window: try chunks")
    return Setting("try_chunking", False, f"only {over:.0%} of positives exceed the {window}-token window")


def choose_negatives(n_labelled: int, available: int) -> Setting:
    """Choose the hard-negative counts to try from the number of labelled pairs and mined negatives.

    Inputs: labelled training pairs; hard negatives mined per example (the
    mine stage's ``negatives``). Output: ``Setting("negatives", [counts], reason)``.
    """
    if available <= 0:
        return Setting("negatives", [0], "no mined hard negatives: in-batch negatives only")
    if n_labelled >= PLENTIFUL:
        return Setting(
            "negatives", [1], f"{n_labelled} labelled pairs (>= {PLENTIFUL}): one hard negative each, as the plain "
            "recipe; each extra negative costs a forward and backward pass per example",
        )  # fmt: skip
    counts = sorted({1, min(3, available)})
    return Setting(
        "negatives", counts, f"{n_labelled} labelled pairs (< {PLENTIFUL}): few pairs get more from each, try {counts}"
    )


def choose_synthetic_shares(n_labelled: int, n_synthetic: int) -> Setting:
    """Choose the shares of synthetic pairs to try; "no synthetic pairs" (0.0) is always one.

    Inputs: labelled and synthetic training pairs. Output:
    ``Setting("synthetic_shares", [shares], reason)``; 1.0 means every synthetic pair.
    """
    if n_synthetic <= 0:
        return Setting("synthetic_shares", [0.0], "no synthetic queries")
    if n_labelled <= 0:
        return Setting("synthetic_shares", [1.0], "no labelled pairs: every synthetic pair")
    if n_labelled >= PLENTIFUL:
        wanted, why = [0.1], f"{n_labelled} labelled pairs (>= {PLENTIFUL}): synthetic pairs at most a small share"
    elif n_labelled >= FEW:
        wanted, why = [0.25, 0.5], f"{n_labelled} labelled pairs ({FEW}-{PLENTIFUL - 1}): up to half synthetic"
    else:
        wanted, why = [0.5, 0.75], f"only {n_labelled} labelled pairs (< {FEW}): synthetic pairs may dominate"
    natural = n_synthetic / (n_labelled + n_synthetic)
    shares = sorted({0.0, *(s if s < natural else 1.0 for s in wanted)})
    return Setting("synthetic_shares", shares, f"{why}; {n_synthetic} synthetic pairs fill at most {natural:.0%}")
