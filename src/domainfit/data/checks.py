r"""Checks every input passes at load time, so that no bad value reaches a writer after the expensive work.

* **Ids** (documents, queries, qrels, click logs) become columns of TREC run
  files, keys of JSON files and lines of JSONL files. An id must be non-empty
  and hold no whitespace of any kind (TREC columns are whitespace-separated),
  no control or invisible format character, no Unicode noncharacter and no
  lone surrogate (UTF-8 cannot encode one). `id_problem` says what is wrong.
* **Text** read from JSON may carry a lone surrogate through a ``\ud800``
  escape; UTF-8 writers cannot encode it. `surrogate_problem` finds one in any
  value (keys and nested values included).
* **The evaluated split** must exist and have at least one judged query (a
  query of queries.jsonl with a document of grade > 0). Stages call
  `check_evaluated_split` right after loading the data, before any model.
* **Split names** become file names (``qrels/<split>.tsv``): `split_name_problem`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError

#: Largest accepted relevance grade, in absolute value (a 32-bit integer, as trec_eval and ranx store it).
MAX_GRADE = 2**31 - 1

_NAMES = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return", " ": "a space"}
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A JSON escape that may decode to a surrogate (a fast pre-check before scanning a record).
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _describe(char: str) -> str:
    """Name a character for an error message: ``U+00A0 NO-BREAK SPACE``."""
    code = f"U+{ord(char):04X}"
    name = _NAMES.get(char) or unicodedata.name(char, "")
    return f"{name}, {code}" if char in _NAMES else (f"{code} {name}" if name else code)


def _is_noncharacter(code: int) -> bool:
    """Tell whether ``code`` is a Unicode noncharacter (U+FDD0..U+FDEF, the last two code points of each plane)."""
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def id_problem(value: str) -> str | None:
    """Return what makes ``value`` unusable as an id, or None when every writer can carry it.

    Rejected: the empty string, any whitespace (``str.isspace``: spaces, tabs,
    newlines, no-break and ideographic spaces, line and paragraph separators,
    the ASCII separators U+001C..U+001F), control characters, invisible format
    characters (zero-width space, byte-order mark, bidirectional controls),
    noncharacters and lone surrogates.
    """
    if not value:
        return "is empty"
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            what = f"a lone surrogate U+{code:04X} (invalid Unicode; UTF-8 cannot encode it)"
        elif char.isspace():
            what = f"whitespace ({_describe(char)})"
        elif unicodedata.category(char) == "Cc":
            what = f"a control character ({_describe(char)})"
        elif unicodedata.category(char) == "Cf":
            what = f"an invisible format character ({_describe(char)})"
        elif _is_noncharacter(code):
            what = f"a Unicode noncharacter (U+{code:04X})"
        else:
            continue
        shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return f"contains {what} at character {position}: {shown!r:.60}"
    return None


def check_id(value: str, path: Path | str, line: int, field: str) -> str:
    """Return ``value`` when it is a valid id (see `id_problem`), else raise `InputError` at ``path:line: field``."""
    problem = id_problem(value)
    if problem is not None:
        raise InputError(path, line, field, problem)
    return value


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield ``(location, string)`` for every string in a JSON value, keys included (dotted locations)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where != "-" else str(key)
            yield inner, str(key)
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}.{index}" if where != "-" else str(index))


def surrogate_problem(value: Any) -> tuple[str, str] | None:
    """Return ``(field, message)`` for the first lone surrogate in ``value`` (any nesting), or None."""
    for where, text in _strings(value, "-"):
        found = _SURROGATE.search(text)
        if found is not None:
            field = where.encode("utf-8", "backslashreplace").decode("utf-8")
            code = ord(found.group())
            return field, (
                f"invalid Unicode: lone surrogate U+{code:04X} (a \\u{code:04x} escape without its pair) "
                f"at character {found.start() + 1}"
            )
    return None


def split_name_problem(name: str) -> str | None:
    """Return what makes ``name`` unusable as a split (the file ``qrels/<name>.tsv``), or None."""
    if not name or name in (".", ".."):
        return f"{name!r} is not a split name"
    if "/" in name or "\\" in name or name.endswith(".tsv"):
        return f"{name!r} must be a bare split name such as 'test' (the file qrels/<split>.tsv), not a path"
    problem = id_problem(name)
    return None if problem is None else f"split name {problem}"
