"""The structure of a text: sections under headings, paragraphs, lines and sentences.

Headings are recognised in Markdown (``# Title`` and underlined ``Title`` / ``=====``),
reStructuredText (a title underlined with ``=``, ``-``, ``~``, ``^`` or ``+``) and
HTML (``<h1>`` to ``<h6>``); Markdown headings inside fenced code blocks are ignored.
Paragraphs end at blank lines or before an HTML block tag (``<p>``, ``<div>``, ``<li>``...).

Every function returns character spans ``(start, end)`` into the text it was given, so
a piece is always ``text[start:end]`` and offsets map back to the original document.
Markup is never removed (an HTML chunk keeps its tags); strip it before import if the
encoder should not see it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

Span = tuple[int, int]

_ATX = re.compile(r"^[ ]{0,3}(#{1,6})[ \t]+(\S[^\n]*?)(?:[ \t]+#+)?[ \t]*$", re.M)
_UNDERLINE = re.compile(r"^([ \t]*\S[^\n]*)\n([=\-~^+])\2{2,}[ \t]*$", re.M)
_ADORNMENT = re.compile(r"^\s*([=\-~^+*#_])\1*\s*$")
_HTML_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.I | re.S)
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})[^\n]*\n.*?^[ ]{0,3}\1[ \t]*$", re.M | re.S)
_TAG = re.compile(r"<[^>]+>")

#: Paragraph breaks: a blank line, or just before an HTML block tag.
PARAGRAPH = re.compile(
    r"\n[ \t]*\n\s*|(?=<(?:p|div|li|ul|ol|table|tr|pre|blockquote|section|article|br|h[1-6])\b)", re.I
)
#: Line breaks.
LINE = re.compile(r"\n\s*")
#: Sentence ends: ``. ! ?`` (optionally followed by a closing quote or bracket) then white space;
#: CJK full stops need no white space after them.
SENTENCE = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+|(?<=[。！？])(?=\S)")


@dataclass(frozen=True)
class Section:
    """A section of a text: from its heading (if any) to the next heading.

    ``start``/``end`` are character offsets; ``body_start`` is where the heading line
    ends (equal to ``start`` for the untitled part before the first heading);
    ``path`` holds the heading titles from the outermost down to this section's own.
    """

    start: int
    end: int
    body_start: int
    path: tuple[str, ...]


def trim(text: str, start: int, end: int) -> Span:
    """Return ``(start, end)`` narrowed so that the span neither starts nor ends with white space."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _headings(text: str) -> list[tuple[int, int, int, str]]:
    """Return ``(start, body_start, level, title)`` for every heading, in text order, without overlaps."""
    fences = [m.span() for m in _FENCE.finditer(text)]

    def fenced(pos: int) -> bool:
        return any(a <= pos < b for a, b in fences)

    found: list[tuple[int, int, int, str]] = []
    for m in _ATX.finditer(text):
        if not fenced(m.start()):
            found.append((m.start(), m.end(), len(m.group(1)), m.group(2).strip()))
    levels: dict[str, int] = {}
    for m in _UNDERLINE.finditer(text):
        title = m.group(1).strip()
        if fenced(m.start()) or _ADORNMENT.match(title) or title.startswith("#"):
            continue
        level = levels.setdefault(m.group(2), len(levels) + 1)
        found.append((m.start(), m.end(), level, title))
    for m in _HTML_HEADING.finditer(text):
        title = " ".join(html.unescape(_TAG.sub(" ", m.group(2))).split())
        found.append((m.start(), m.end(), int(m.group(1)), title))
    found.sort()
    out: list[tuple[int, int, int, str]] = []
    for item in found:
        if not out or item[0] >= out[-1][1]:
            out.append(item)
    return out


def find_sections(text: str) -> list[Section]:
    """Split ``text`` into sections at its headings.

    Input: a document text. Output: sections in order; together they cover the
    text from the first non-blank character to the end. Text before the first
    heading is a section with an empty ``path``.
    """
    heads = _headings(text)
    if not heads:
        return [Section(0, len(text), 0, ())]
    sections: list[Section] = []
    if text[: heads[0][0]].strip():
        sections.append(Section(0, heads[0][0], 0, ()))
    stack: list[tuple[int, str]] = []
    for i, (start, body, level, title) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        sections.append(Section(start, end, body, tuple(t for _, t in stack)))
    return sections


def split_spans(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[Span]:
    """Split ``text[start:end]`` at every match of ``separator``.

    Output: the non-blank pieces between separators as trimmed spans, in order.
    """
    out: list[Span] = []
    pos = start
    for m in separator.finditer(text, start, end):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = max(pos, m.end())
    out.append((pos, end))
    spans = [trim(text, a, b) for a, b in out]
    return [(a, b) for a, b in spans if a < b]
