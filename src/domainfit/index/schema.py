"""The columns of an index row, and the types of its metadata.

Metadata a store keeps (and filters on) are the scalar fields of a document
(str, int, float, bool) whose key is a plain identifier not taken by a base
column; every document's value of one key must have one type (ints widen to
floats). `metadata_types` infers those types; `stored_metadata` picks what a
document keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from domainfit.core.errors import UsageError
from domainfit.index.types import RESERVED_FIELDS, IndexDocument, Scalar

#: The column BM25 indexes and the encoder reads: title and text joined (`IndexDocument.embed_text`).
FULL_TEXT = "full_text"
#: Columns every row has (metadata keys may not take these names, nor start with ``vec_``).
BASE_COLUMNS: tuple[str, ...] = (*RESERVED_FIELDS, FULL_TEXT)
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def storable_key(key: str) -> bool:
    """Return True for a metadata key a store keeps as a column: an identifier, not a base or vector column."""
    return bool(_KEY.match(key)) and key not in BASE_COLUMNS and not key.startswith("vec_")


def scalar_kind(value: Any) -> str | None:
    """Return ``bool``, ``int``, ``float`` or ``str`` for a scalar value, None for anything else (lists, objects)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def stored_metadata(metadata: Mapping[str, Any]) -> dict[str, Scalar]:
    """Return the part of a document's metadata a store keeps: scalar values under storable keys."""
    return {k: v for k, v in metadata.items() if storable_key(k) and scalar_kind(v) is not None}


_ARROW = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}


def merge_kind(have: str | None, new: str) -> str | None:
    """Return the type of a key that holds ``have`` and ``new`` values (int, float: float); None: a conflict."""
    if have is None or have == new:
        return new
    if {have, new} == {"int", "float"}:
        return "float"
    return None


def metadata_types(docs: Sequence[IndexDocument]) -> dict[str, pa.DataType]:
    """Return the Arrow type of every metadata key of ``docs`` (raises `UsageError` when a key mixes types)."""
    kinds: dict[str, str] = {}
    for doc in docs:
        for key, value in doc.metadata.items():
            kind = scalar_kind(value)
            if kind is None:
                continue
            merged = merge_kind(kinds.get(key), kind)
            if merged is None:
                raise UsageError(f"document {doc.id!r}: metadata {key!r} is {kind}, other documents hold {kinds[key]}")
            kinds[key] = merged
    return {key: _ARROW[kind] for key, kind in kinds.items()}


def _accepted(kind: pa.DataType) -> tuple[str, ...]:
    """Return the value kinds a column of Arrow type ``kind`` may be compared with."""
    if pa.types.is_boolean(kind):
        return ("bool",)
    if pa.types.is_integer(kind):
        return ("int",)
    if pa.types.is_floating(kind):
        return ("int", "float")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ("str",)
    return ()


_NAMES = {"bool": "boolean", "int": "integer", "float": "number", "str": "text"}


def kind_name(kind: pa.DataType | str) -> str:
    """Return a user's name for a column type or value kind: text, integer, number or boolean."""
    if isinstance(kind, str):
        return _NAMES.get(kind, kind)
    accepted = _accepted(kind)
    return _NAMES[accepted[-1]] if accepted else str(kind)


def check_filter_value(key: str, value: Any, kind: pa.DataType | str) -> None:
    """Refuse a filter value (or any value of a list) whose type is not the field's.

    Inputs: the field, the filter's value (a scalar or a list of them) and the
    field's Arrow type or scalar kind (``str``, ``int``, ``float``, ``bool``).
    Raises `UsageError` naming the field, its type and the value's, e.g.
    ``filter 'rank': the field holds integer values, got text 'three'``.
    """
    accepted = _accepted(_ARROW[kind]) if isinstance(kind, str) else _accepted(kind)
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        got = scalar_kind(item)
        if got is None or got not in accepted:
            shown = kind_name(got) if got is not None else type(item).__name__
            raise UsageError(f"filter {key!r}: the field holds {kind_name(kind)} values, got {shown} {item!r}")
