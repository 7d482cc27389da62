"""Check whether texts fit a model's window: count what the encoder would silently truncate, and warn once.

A bi-encoder reads at most ``max_seq_length`` tokens of a text (special tokens and
prompt included) and ignores the rest. `check_truncation` counts, in the model's own
tokens, how many texts exceed that window and by how much, and issues a
`TruncationWarning` once per model, kind and counts. Chunking
(`domainfit.data.chunking`) is the remedy; this module does not depend on it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domainfit.core.errors import DomainfitWarning, UsageError


def token_lengths(tokenizer: Any, texts: Sequence[str], batch_size: int = 256) -> list[int]:
    """Return how many tokens, special tokens included, the model's tokenizer makes of each text."""
    out: list[int] = []
    for begin in range(0, len(texts), batch_size):
        batch = list(texts[begin : begin + batch_size])
        enc = tokenizer(batch, add_special_tokens=True, verbose=False, return_attention_mask=False)
        out.extend(len(ids) for ids in enc["input_ids"])
    return out


def _model_tokenizer(model: Any) -> Any:
    """Return the HF tokenizer of a sentence-transformers model."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise UsageError("the model has no tokenizer; chunking and truncation checks need one")
    return tokenizer


def max_seq_length(model: Any) -> int:
    """Return the most tokens (special tokens included) the model reads of one text."""
    limit: Any = getattr(model, "max_seq_length", None)
    if limit is None:
        limit = getattr(_model_tokenizer(model), "model_max_length", 512)
    return int(limit)


class TruncationWarning(DomainfitWarning):
    """Some texts are longer than the model's window; the encoder reads only their beginning."""


@dataclass(frozen=True)
class TruncationReport:
    """How many of ``n_texts`` texts exceed ``max_seq_length`` tokens, and by how much."""

    what: str
    n_texts: int
    n_over: int
    max_seq_length: int
    longest: int
    tokens_total: int
    tokens_dropped: int

    def message(self, model_name: str) -> str:
        """Return the one-paragraph warning text."""
        share = self.tokens_dropped / self.tokens_total if self.tokens_total else 0.0
        return (
            f"{self.n_over} of {self.n_texts} {self.what} exceed the {self.max_seq_length}-token window of "
            f"{model_name} (longest: {self.longest} tokens); the encoder ignores everything past the window, "
            f'{share:.0%} of all their tokens. Set [chunking] method = "recursive" (or "auto") to index them whole.'
        )

    def to_json(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        return dict(self.__dict__)


_WARNED: set[tuple[str, str, int, int, int]] = set()


def check_truncation(
    model: Any, texts: Sequence[str], what: str, model_name: str = "the model", prompt: str = "", warn: bool = True
) -> TruncationReport:
    """Count the texts the model would truncate; warn once (per model, kind and counts) when there are any.

    Inputs: a sentence-transformers model, the texts as they will be encoded, what
    they are (``"documents"``, ``"queries"``, ``"chunks"``), a display name and the
    prompt the model prepends. Output: a `TruncationReport`. The warning is a
    `TruncationWarning`, issued at most once for the same model, kind and counts.
    """
    limit = max_seq_length(model)
    tokenizer = _model_tokenizer(model)
    lengths = token_lengths(tokenizer, [prompt + t for t in texts]) if texts else []
    over = [n for n in lengths if n > limit]
    report = TruncationReport(
        what=what,
        n_texts=len(lengths),
        n_over=len(over),
        max_seq_length=limit,
        longest=max(lengths, default=0),
        tokens_total=sum(lengths),
        tokens_dropped=sum(n - limit for n in over),
    )
    key = (model_name, what, report.n_over, report.n_texts, limit)
    if warn and report.n_over and key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(report.message(model_name), TruncationWarning, stacklevel=2)
    return report
