"""A saved query-side adapter in the query path: load it as a numpy map applied to query embeddings only.

The folder holds ``query_adapter.json`` (format version, kind, width, the base
model whose query embeddings it maps) and ``query_adapter.safetensors`` (the
weights; never pickle). The map is the identity plus what training learnt
(`domainfit.train.adapter`): ``linear`` is ``x W^T + b``; ``lowrank`` is
``x + (x V^T) U^T`` (rank r); ``mlp`` is ``x + W2 relu(W1 x + b1) + b2``; the
result is L2-normalised. Documents keep
the base model's vectors, so nothing stored is re-embedded.

Example::

    adapter = load_query_adapter(folder)
    query_vectors = adapter(base_model_query_vectors)   # (n, d) -> (n, d), unit rows
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from domainfit.core.files import atomic_write_json

ADAPTER_JSON = "query_adapter.json"
ADAPTER_WEIGHTS = "query_adapter.safetensors"
ADAPTER_FORMAT = 1

QueryMap = Callable[[np.ndarray], np.ndarray]


def is_adapter_folder(path: str | Path) -> bool:
    """Return True when ``path`` is a folder holding a saved query adapter."""
    return (Path(path) / ADAPTER_JSON).is_file()


def save_query_adapter(
    folder: Path,
    kind: str,
    weights: dict[str, np.ndarray],
    base_model: str,
    *,
    hidden: int | None = None,
    rank: int | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """Write ``query_adapter.safetensors`` and ``query_adapter.json`` (kind, width, base model, ``info``).

    Inputs: the folder (created), the kind (``linear``, ``lowrank`` or ``mlp``), the
    weights by name (``linear.weight``/``linear.bias``, or ``up.*``/``down.*``), the
    base model name or folder, the MLP's hidden width, the low-rank rank and extra records.
    """
    from safetensors.numpy import save_file

    map_of(kind, weights)  # refuses unknown kinds and missing weights before writing
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, str(folder / ADAPTER_WEIGHTS))
    atomic_write_json(
        folder / ADAPTER_JSON,
        {
            "format_version": ADAPTER_FORMAT,
            "kind": kind,
            "dim": int(next(iter(weights.values())).shape[-1]),
            "hidden": hidden if kind == "mlp" else None,
            "rank": rank if kind == "lowrank" else None,
            "base_model": base_model,
            "applies_to": "query embeddings of the base model (L2-normalised), before search",
            **(info or {}),
        },
    )


def adapter_base_model(path: str | Path) -> str:
    """Return the base model a saved adapter maps the query embeddings of."""
    return str(_read_config(Path(path))["base_model"])


def _read_config(folder: Path) -> dict[str, Any]:
    """Read and check ``query_adapter.json``; raises ValueError naming the file and field on a bad one."""
    path = folder / ADAPTER_JSON
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable query adapter ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a query adapter record")
    for key in ("format_version", "kind", "dim", "base_model"):
        if key not in config:
            raise ValueError(f"{path}: field {key!r} missing")
    if config["format_version"] != ADAPTER_FORMAT:
        raise ValueError(f"{path}: format_version {config['format_version']} (this domainfit reads {ADAPTER_FORMAT})")
    return config


def load_query_adapter(path: str | Path) -> QueryMap:
    """Load a saved adapter folder as a numpy function ``(n, d) float32 -> (n, d)`` with unit rows.

    Inputs: the folder `save_query_adapter` wrote. Raises ValueError (naming the
    file and field) on a missing or damaged adapter. The function checks the width.
    """
    from safetensors.numpy import load_file

    folder = Path(path)
    config = _read_config(folder)
    try:
        weights = load_file(str(folder / ADAPTER_WEIGHTS))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder / ADAPTER_WEIGHTS}: not readable ({exc})") from None
    try:
        return map_of(str(config["kind"]), weights, int(config["dim"]))
    except KeyError as exc:
        raise ValueError(f"{folder / ADAPTER_WEIGHTS}: weight {exc} missing") from None


def map_of(kind: str, weights: dict[str, np.ndarray], dim: int | None = None) -> QueryMap:
    """Return the numpy query map of an adapter from its weights (KeyError on a missing weight)."""
    if kind == "linear":
        w, b = weights["linear.weight"], weights["linear.bias"]

        def raw(x: np.ndarray) -> np.ndarray:
            return np.asarray(x @ w.T + b)

    elif kind == "lowrank":
        down, up = weights["down.weight"], weights["up.weight"]

        def raw(x: np.ndarray) -> np.ndarray:
            return np.asarray(x + (x @ down.T) @ up.T)

    elif kind == "mlp":
        w1, b1, w2, b2 = weights["up.weight"], weights["up.bias"], weights["down.weight"], weights["down.bias"]

        def raw(x: np.ndarray) -> np.ndarray:
            return np.asarray(x + np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2)

    else:
        raise ValueError(f"unknown adapter kind {kind!r}; use linear, lowrank or mlp")
    width = dim if dim is not None else int(next(iter(weights.values())).shape[-1])

    def apply(vectors: np.ndarray) -> np.ndarray:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"query adapter expects (n, {width}) embeddings, got {x.shape}")
        out = raw(x).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.asarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    return apply
