r"""Unicode normalisation of every text that enters domainfit: documents, queries, training pairs.

One function, `normalize_text`, is applied wherever text enters (the BEIR and
pair loaders, the BM25 and dense encoders at index and query time, training
examples, generated queries), so a query typed at search time is treated
exactly like the documents and the training data. It is idempotent:
``normalize_text(normalize_text(t)) == normalize_text(t)``.

What it does, in order:

1. line breaks: ``\r\n`` and ``\r`` become ``\n``; vertical tab, form feed,
   NEL (U+0085) and LINE SEPARATOR (U+2028) become ``\n``, PARAGRAPH
   SEPARATOR (U+2029) becomes a blank line ``\n\n`` (paragraph breaks survive
   for the stages that split on them);
2. stray characters are removed: C0 and C1 control characters other than
   ``\t`` and ``\n``, DEL, invisible format characters (zero-width space,
   word joiner, byte-order mark, soft hyphen, bidirectional marks and
   embeddings); lone surrogates become U+FFFD;
3. Unicode NFKC: full-width and half-width forms, ligatures, compatibility
   digits and spaces (no-break, ideographic, thin ...) fold to their plain
   forms, and accents compose (``e`` + U+0301 becomes ``é``). Spacing
   diacritics such as ``´`` and ``¨`` are kept as they are, since NFKC would
   turn each into a space followed by a combining mark;
4. leading and trailing whitespace is stripped. Inner spaces, tabs and
   newlines are kept (indentation and blank lines carry structure).

Zero-width (non-)joiners (U+200C, U+200D) are kept: Persian, Indic scripts and
emoji sequences need them. Case, punctuation and inner whitespace are left
alone; the lossy *matching key* for duplicate detection is a different
function (`domainfit.data.splits.normalise_text`).

Whether normalisation is on is a setting (``[text] normalize`` in
``domainfit.toml``, see `domainfit.text.config`); `prepare_text` applies it
and `normalization_id` names what was applied, for artifacts and model folders.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

NORMALIZATION_VERSION = 1
"""Version of the rules of `normalize_text`; bumped whenever its output can change."""

UNICODE_VERSION = unicodedata.unidata_version
"""Version of the Unicode database NFKC uses (that of the running Python)."""

# Characters whose NFKC form is a space followed by combining marks (U+00B4 ACUTE ACCENT
# becomes " \u0301"): they are kept as they are. Stable across Unicode versions
# (decompositions never change); tests/test_normalize.py checks the list against unicodedata.
_SPACING_DIACRITICS = frozenset(
    "\u00a8\u00af\u00b4\u00b8\u02d8\u02d9\u02da\u02db\u02dc\u02dd\u037a\u0384\u0385"
    "\u1fbd\u1fbf\u1fc0\u1fc1\u1fcd\u1fce\u1fcf\u1fdd\u1fde\u1fdf\u1fed\u1fee\u1ffd\u1ffe"
    "\u2017\u203e\u309b\u309c\ufc5e\ufc5f\ufc60\ufc61\ufc62\ufc63"
    "\ufe49\ufe4a\ufe4b\ufe4c\ufe70\ufe72\ufe74\ufe76\ufe78\ufe7a\ufe7c\ufe7e\uffe3"
)
_SPACING_SPLIT = re.compile("([" + "".join(sorted(_SPACING_DIACRITICS)) + "])")

_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\x85\u2028]")
# C0 controls except \t and \n, DEL, C1 controls, and invisible format characters.
_REMOVED = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
    "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ASCII_CHANGES = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_ASCII_SPACE = " \t\n"


def _nfkc(text: str) -> str:
    """NFKC, leaving the spacing diacritics of ``_SPACING_DIACRITICS`` untouched."""
    if _SPACING_SPLIT.search(text) is None:
        return unicodedata.normalize("NFKC", text)
    parts = _SPACING_SPLIT.split(text)
    # odd positions are the separators (the kept diacritics); even positions are the runs between them
    return "".join(part if i % 2 else unicodedata.normalize("NFKC", part) for i, part in enumerate(parts))


def normalize_text(text: str) -> str:
    r"""Return ``text`` normalised for indexing, searching and training (see the module docstring).

    Input: any string. Output: the normalised string; plain ASCII text without
    control characters or surrounding whitespace is returned unchanged (the
    same object). Idempotent. Example: ``normalize_text("ＡＰＩ\u3000key\x00") == "API key"``.
    """
    if text.isascii() and _ASCII_CHANGES.search(text) is None:
        if not text or (text[0] not in _ASCII_SPACE and text[-1] not in _ASCII_SPACE):
            return text
        return text.strip()
    text = _LINE_BREAKS.sub("\n", text).replace("\u2029", "\n\n")
    text = _REMOVED.sub("", text)
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
        text = _nfkc(text)
    return text.strip()


def normalize_texts(texts: Iterable[str]) -> list[str]:
    """Return `normalize_text` of every text, in order."""
    return [normalize_text(t) for t in texts]


def normalization_id(enabled: bool = True) -> str:
    """Name the normalisation applied, for artifacts and model folders.

    Input: whether normalisation is on. Output: ``"nfkc-v<N>+unicode-<version>"``,
    or ``"off"``. Two runs whose ids differ may have seen different texts.
    """
    return f"nfkc-v{NORMALIZATION_VERSION}+unicode-{UNICODE_VERSION}" if enabled else "off"
