"""LanceDB's side of the Arrow and SQL plumbing: metadata filters as a SQL ``WHERE``, vectors as fixed-size lists.

`where_clause` turns equality filters into the ``WHERE`` LanceDB's planner
reads (values quoted as literals, each checked against its column's type);
`fixed_list` and `codes` move 2-d numpy arrays into and out of Arrow
fixed-size-list columns of any element type (float32, float16, int8 codes,
packed binary bits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from domainfit.core.errors import UsageError
from domainfit.index.schema import BASE_COLUMNS, check_filter_value
from domainfit.index.types import Scalar


def literal(value: Scalar) -> str:
    """Return ``value`` as a SQL literal (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def where_clause(filters: Mapping[str, Scalar | Sequence[Scalar]], schema: pa.Schema) -> str | None:
    """Return the SQL ``WHERE`` of metadata equality filters (a list: any of its values), or None for none.

    Raises `UsageError` for a key that is not a filterable column, or a value
    whose type is not the column's (`domainfit.index.schema.check_filter_value`).
    """
    parts: list[str] = []
    columns = schema.names
    for key, value in filters.items():
        if key not in columns or key in BASE_COLUMNS or key.startswith("vec_"):
            raise UsageError(f"cannot filter on {key!r}: not a metadata field of this index")
        check_filter_value(key, value, schema.field(key).type)
        if isinstance(value, list | tuple):
            if not value:
                return "FALSE"
            parts.append(f"`{key}` IN ({', '.join(literal(v) for v in value)})")
        else:
            parts.append(f"`{key}` = {literal(value)}")  # type: ignore[arg-type]
    return " AND ".join(parts) or None


def fixed_list(rows: np.ndarray, element: pa.DataType) -> pa.FixedSizeListArray:
    """Return a 2-d array as an Arrow fixed-size-list array of ``element`` values."""
    array = np.ascontiguousarray(rows)
    return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1), type=element), int(array.shape[1]))


def codes(column: pa.ChunkedArray | pa.Array, width: int, dtype: Any) -> np.ndarray:
    """Return a fixed-size-list column as an (n, width) numpy array of ``dtype``."""
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = flat.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=dtype).reshape(len(flat), width)
