"""Text structure the offline generators rely on: sections under headings, sentences, identifiers.

* `split_sections`: Markdown ``#`` headings, underlined (reST / setext) headings
  and HTML ``<h1>`` .. ``<h6>``, each with the text of its section.
* `sentence_spans`: sentence boundaries as character spans of the original text.
* `find_identifiers`: tokens that look like codes and names users search for
  verbatim: ``ERR_AUTH_702``, ``os.path.join``, ``v2.3.1``, ``SKU-1234``,
  ``BufferedIOBase``, ``max_line_bytes``.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_ADORNMENT = re.compile(r"^([=\-~^\"'#*+:._])\1{2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HTML_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BLOCK = re.compile(r"</?(?:p|div|br|li|ul|ol|tr|td|th|table|section|pre|blockquote)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[ivxIVX]+\.|[A-Za-z]\))\s+")
_MAX_HEADING_WORDS = 14
_MAX_HEADING_CHARS = 120


@dataclass(frozen=True)
class Section:
    """One heading: its cleaned text, its level (1 = top) and the text of its section (subsections included)."""

    heading: str
    level: int
    body: str


def clean_heading(text: str) -> str:
    """Strip markup (tags, backticks, emphasis), numbering like ``2.3`` and a trailing colon from a heading."""
    text = html.unescape(_TAG.sub(" ", text))
    text = re.sub(r"[`*]+|(?<!\w)_+|_+(?!\w)", "", text)
    text = " ".join(text.split())
    text = _NUMBERING.sub("", text)
    return text.rstrip(":").strip()


def _plausible_heading(text: str) -> bool:
    """Return True for a plausible heading: short, with at least one letter."""
    return (
        bool(text)
        and len(text) <= _MAX_HEADING_CHARS
        and len(text.split()) <= _MAX_HEADING_WORDS
        and any(c.isalpha() for c in text)
    )


def _html_text(fragment: str) -> str:
    """Plain text of an HTML fragment: block tags become line breaks, other tags go, entities are decoded."""
    text = _TAG.sub(" ", _HTML_BLOCK.sub("\n", fragment))
    lines = (" ".join(line.split()) for line in html.unescape(text).splitlines())
    return "\n".join(line for line in lines if line)


def plain_text(text: str) -> str:
    """Return ``text`` without HTML tags and entities (unchanged when it holds no tag)."""
    if "<" not in text or not _TAG.search(text):
        return text
    return html.unescape(_TAG.sub(" ", text))


def _html_sections(text: str) -> list[Section]:
    """Sections of an HTML document: each ``<hN>`` up to the next heading of level N or higher."""
    found = [(m.start(), m.end(), int(m.group(1)), clean_heading(m.group(2))) for m in _HTML_HEADING.finditer(text)]
    sections = []
    for k, (_, end, level, heading) in enumerate(found):
        stop = next((s for s, _, lvl, _ in found[k + 1 :] if lvl <= level), len(text))
        if _plausible_heading(heading):
            sections.append(Section(heading, level, _html_text(text[end:stop])))
    return sections


def _underline_heading(lines: list[str], i: int) -> tuple[str, int] | None:
    """If line ``i`` is a heading underlined on line ``i + 1``, return (style key, lines it starts before)."""
    if i + 1 >= len(lines):
        return None
    line, under = lines[i], _ADORNMENT.match(lines[i + 1])
    if under is None or not line.strip() or line[0].isspace() or _ADORNMENT.match(line):
        return None
    overline = i > 0 and bool(_ADORNMENT.match(lines[i - 1])) and lines[i - 1][0] == under.group(1)
    before = i - 2 if overline else i - 1
    if before >= 0 and lines[before].strip():
        return None  # a paragraph line followed by a rule, not a heading
    return f"{'o' if overline else ''}{under.group(1)}", 1 if overline else 0


def _line_headings(lines: list[str]) -> list[tuple[int, int, int, str]]:
    """Find Markdown and underlined headings: (first line, first body line, level, heading), outside code fences."""
    found: list[tuple[int, int, int, str]] = []
    styles: dict[str, int] = {}
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        under = None if in_fence else _underline_heading(lines, i)
        if under is not None:
            style, over = under
            level = styles.setdefault(style, len(styles) + 1)
            found.append((i - over, i + 2, level, clean_heading(line)))
            i += 2  # the underline is consumed (a ``~~~`` underline is not a code fence)
            continue
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (atx := _ATX.match(line)):
            found.append((i, i + 1, len(atx.group(1)), clean_heading(atx.group(2))))
        i += 1
    return found


def split_sections(text: str) -> list[Section]:
    """Return the sections of a Markdown, reStructuredText or HTML document, in order.

    Input: the document text. Output: one `Section` per plausible heading
    (short, with a letter), whose body runs to the next heading of the same or
    a higher level. HTML is recognised by ``<h1>`` .. ``<h6>`` tags; otherwise
    ``#`` headings and headings underlined (optionally overlined) with a run
    of ``= - ~ ^ " ' ` # * + : . _`` are found, outside fenced code blocks.
    """
    if _HTML_HEADING.search(text):
        return _html_sections(text)
    lines = text.splitlines()
    found = _line_headings(lines)
    sections = []
    for k, (_, body_start, level, heading) in enumerate(found):
        stop = next((first for first, _, lvl, _ in found[k + 1 :] if lvl <= level), len(lines))
        if _plausible_heading(heading):
            sections.append(Section(heading, level, "\n".join(lines[body_start:stop]).strip()))
    return sections


# ----------------------------------------------------------------------------- sentences

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[`*])")
_LINE_END = re.compile(r"[.!?:;)]\s*$")
_STARTS_BLOCK = re.compile(r"^\s*(?:[-*+•]\s|\d+[.)]\s|#|>|\|)")
_ABBREVIATIONS = frozenset({"e.g.", "i.e.", "etc.", "vs.", "cf.", "mr.", "mrs.", "dr.", "no.", "fig.", "approx."})


def _abbreviation_before(text: str, pos: int) -> bool:
    """Return True when the word ending at ``pos`` is an abbreviation or a single initial (``J.``)."""
    word = text[:pos].rsplit(None, 1)[-1].lower() if text[:pos].strip() else ""
    return word in _ABBREVIATIONS or bool(re.fullmatch(r"[a-z]\.", word))


def _line_cuts(text: str) -> set[int]:
    """Positions of line breaks that end a unit: after a finished line, around headings, bullets and rules."""
    cuts: set[int] = set()
    lines = text.split("\n")
    pos = 0
    for k, line in enumerate(lines[:-1]):
        pos += len(line)
        following = lines[k + 1]
        if (
            _LINE_END.search(line)
            or _STARTS_BLOCK.match(following)
            or _STARTS_BLOCK.match(line)
            or _ADORNMENT.match(following.strip() or "x")
            or _ADORNMENT.match(line.strip() or "x")
        ):
            cuts.add(pos)
        pos += 1
    return cuts


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` character spans of the sentences of ``text``, in order, without surrounding space.

    Units end at blank lines, at a line break after a line that ends in
    ``. ! ? : ; )`` or before a bullet / heading / rule, and at sentence
    punctuation followed by a capital, digit or quote (not after ``e.g.`` and
    similar). Wrapped lines inside a sentence stay one sentence.
    """
    cuts = {0, len(text)} | _line_cuts(text)
    for match in _PARAGRAPH.finditer(text):
        cuts.update((match.start(), match.end()))
    for match in _SENTENCE_END.finditer(text):
        if not _abbreviation_before(text, match.start()):
            cuts.add(match.start() + len(match.group(0)) - len(match.group(0).lstrip("\"')]")))
    bounds = sorted(cuts)
    spans = []
    for start, end in itertools.pairwise(bounds):
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            offset = start + len(piece) - len(piece.lstrip())
            spans.append((offset, offset + len(stripped)))
    return spans


# ----------------------------------------------------------------------------- identifiers

_IDENTIFIER = re.compile(
    r"""
    (?<![\w.\-])(?:
        v\d+(?:\.\d+)+(?:[-+][0-9A-Za-z.]+)?            # v2.3.1, v1.0-beta
      | \d+\.\d+\.\d+(?:[-+][0-9A-Za-z.]+)?              # 2.3.1
      | [A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?:\(\))?   # os.path.join, config.yaml
      | [A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+                    # ERR_AUTH_702
      | [A-Za-z]{1,10}-\d{2,}[A-Za-z0-9\-]*              # SKU-1234, RFC-2616
      | [A-Z]{2,}\d{2,}[A-Z0-9]*                         # ISO9001, QX200
      | [a-z][a-z0-9]*(?:_[a-z0-9]+)+                    # max_line_bytes
      | [a-z]+[A-Z][A-Za-z0-9]*                          # readInto
      | [A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+             # BufferedIOBase
      | [A-Za-z_]\w*\(\)                                 # func()
    )(?![\w\-]|\.\w)
    """,
    re.VERBOSE,
)


def _is_identifier(token: str) -> bool:
    """Reject look-alikes: abbreviations such as ``e.g`` and dotted words with one-letter parts."""
    if "." in token and not token[0].isdigit() and not token.startswith("v"):
        parts = token.removesuffix("()").split(".")
        return all(len(p) >= 2 for p in parts)
    return len(token) >= 3


def find_identifiers(text: str) -> list[str]:
    """Return the identifier-like tokens of ``text`` in order of first appearance, without duplicates.

    A trailing ``()`` is dropped (users type ``os.path.join``, not ``os.path.join()``).
    """
    seen: dict[str, None] = {}
    for match in _IDENTIFIER.finditer(text):
        token = match.group(0).removesuffix("()")
        if _is_identifier(token):
            seen.setdefault(token, None)
    return list(seen)
