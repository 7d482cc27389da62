"""Names of compression configurations, and the grid a sweep evaluates.

A configuration is written ``<reduction>-<dim>/<store>[+<rescore>x<oversample>]``:

* reduction: ``trunc`` (Matryoshka truncation) or ``pca`` (PCA fitted on the corpus);
  ``full`` stands for ``trunc`` at the model's own width;
* store: ``float32``, ``float16``, ``int8``, ``binary``, ``pq<m>x<nbits>`` or ``ivfpq<m>x<nbits>``;
* rescore: ``int8`` or ``float32`` documents rescoring ``depth * oversample`` candidates.

Examples: ``trunc-384/float32`` (the reference), ``pca-128/int8``,
``trunc-384/binary+int8x4``, ``trunc-384/pq32x8``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from domainfit.compress.config import CompressConfig
from domainfit.core.errors import UsageError

StoreKind = Literal["float32", "float16", "int8", "binary", "pq", "ivfpq"]
ReductionKind = Literal["truncate", "pca"]

#: The uncompressed configuration (the model's own width, float32): what a float32 index is calibrated as.
FULL_PRECISION = "full/float32"

_SPEC = re.compile(
    r"^(?P<red>trunc|pca|full)(?:-(?P<dim>\d+))?/"
    r"(?P<store>float32|float16|int8|binary|(?P<pq>ivfpq|pq)(?P<m>\d+)x(?P<nbits>\d+))"
    r"(?:\+(?P<rescore>int8|float32)x(?P<over>\d+))?$"
)


@dataclass(frozen=True)
class VariantSpec:
    """One configuration: reduction and target dimension, store (with PQ shape) and optional rescoring."""

    reduction: ReductionKind
    dim: int
    store: StoreKind
    pq_m: int = 0
    pq_nbits: int = 0
    rescore: Literal["int8", "float32"] | None = None
    oversample: int = 1

    @property
    def name(self) -> str:
        """The configuration's name, e.g. ``pca-128/int8`` or ``trunc-384/binary+int8x4``."""
        red = "trunc" if self.reduction == "truncate" else "pca"
        store = f"{self.store}{self.pq_m}x{self.pq_nbits}" if self.store in ("pq", "ivfpq") else self.store
        tail = f"+{self.rescore}x{self.oversample}" if self.rescore else ""
        return f"{red}-{self.dim}/{store}{tail}"

    @property
    def family(self) -> str:
        """A coarse group for plots and tables: the store, with ``+rescore`` when rescored."""
        return f"{self.store}+rescore" if self.rescore else self.store


def parse_spec(text: str, full_dim: int) -> VariantSpec:
    """Parse a configuration name (see the module docstring) for a model of width ``full_dim``.

    Output: the `VariantSpec`. Raises `UsageError` for a malformed name, a
    dimension wider than the model or not a multiple of 8, or a PQ shape whose
    ``m`` does not divide the dimension.
    """
    match = _SPEC.match(text.strip())
    if match is None:
        raise UsageError(
            f"bad configuration {text!r}: expected e.g. 'full/float32', 'pca-128/int8', "
            "'trunc-256/binary+int8x4' or 'trunc-384/pq32x8'"
        )
    red = match["red"]
    dim = full_dim if red == "full" or match["dim"] is None else int(match["dim"])
    if dim > full_dim or dim < 8 or dim % 8:
        raise UsageError(f"bad configuration {text!r}: dimension {dim} must be a multiple of 8 and <= {full_dim}")
    pq = match["pq"]
    store: StoreKind = pq if pq else match["store"]  # type: ignore[assignment]
    m, nbits = (int(match["m"]), int(match["nbits"])) if pq else (0, 0)
    if pq and (m < 1 or dim % m or not 1 <= nbits <= 12):
        raise UsageError(f"bad configuration {text!r}: m={m} must divide {dim} and nbits must be 1..12")
    over = int(match["over"]) if match["over"] else 1
    if over < 1:
        raise UsageError(f"bad configuration {text!r}: oversampling must be >= 1")
    return VariantSpec(
        reduction="pca" if red == "pca" else "truncate",
        dim=dim,
        store=store,
        pq_m=m,
        pq_nbits=nbits,
        rescore=match["rescore"],  # type: ignore[arg-type]
        oversample=over,
    )


def sweep_dims(config: CompressConfig, full_dim: int) -> list[int]:
    """Dimensions to try: the configured ones no wider than the model, plus the model's own width (descending)."""
    return sorted({d for d in config.dims if d <= full_dim} | {full_dim}, reverse=True)


def auto_nlist(n_docs: int) -> int:
    """Default IVF list count for ``n_docs`` vectors: 4*sqrt(N), at most N/39 (FAISS's training rule), at least 1."""
    return max(1, min(int(4 * math.sqrt(n_docs)), n_docs // 39))


def _rescored(spec: VariantSpec, config: CompressConfig) -> list[VariantSpec]:
    """Rescored copies of a binary or PQ spec, one per rescoring precision and oversampling factor."""
    return [
        VariantSpec(spec.reduction, spec.dim, spec.store, spec.pq_m, spec.pq_nbits, rescore, over)
        for rescore in config.rescore_with
        for over in config.oversample
    ]


def _pq_specs(
    config: CompressConfig, full_dim: int, n_docs: int, notes: list[str]
) -> list[tuple[VariantSpec, list[VariantSpec]]]:
    """PQ and IVF-PQ specs at full width, skipping shapes that do not fit (with a note)."""
    out: list[tuple[VariantSpec, list[VariantSpec]]] = []
    for kind, settings in (("pq", config.pq), ("ivfpq", config.ivf_pq)):
        for setting in settings:
            spec = VariantSpec("truncate", full_dim, kind, setting.m, setting.nbits)  # type: ignore[arg-type]
            if full_dim % setting.m:
                notes.append(f"skipped {spec.name}: m={setting.m} does not divide the dimension {full_dim}")
                continue
            if n_docs < 2**setting.nbits:
                notes.append(
                    f"skipped {spec.name}: training {2**setting.nbits} centroids needs at least that many "
                    f"documents (have {n_docs})"
                )
                continue
            out.append((spec, _rescored(spec, config)))
    return out


def enumerate_variants(config: CompressConfig, full_dim: int, n_docs: int) -> tuple[list[VariantSpec], list[str]]:
    """Return the grid of a sweep, the reference (``trunc-<full>/float32``) first, and notes on what was skipped.

    Inputs: the compress config, the model's width and the corpus size (PCA
    to d dimensions needs at least d documents; PQ needs 2**nbits).
    Output: (specs, notes). Every dimension × reduction × precision, binary
    also rescored, then PQ and IVF-PQ (each also rescored).
    """
    notes: list[str] = []
    dims = sweep_dims(config, full_dim)
    skipped_wide = sorted({d for d in config.dims if d > full_dim}, reverse=True)
    if skipped_wide:
        notes.append(f"dimensions {skipped_wide} are wider than the model ({full_dim}); not tried")
    specs = [VariantSpec("truncate", full_dim, "float32")]
    for reduction in ("truncate", "pca"):
        if reduction not in config.reductions:
            continue
        for dim in dims:
            if reduction == "pca" and dim > n_docs:
                notes.append(f"skipped pca-{dim}: PCA to {dim} dimensions needs at least {dim} documents")
                continue
            for precision in config.precisions:
                spec = VariantSpec(reduction, dim, precision)
                if spec not in specs:
                    specs.append(spec)
                if precision == "binary":
                    specs.extend(_rescored(spec, config))
    for spec, rescored in _pq_specs(config, full_dim, n_docs, notes):
        specs.append(spec)
        specs.extend(rescored)
    return specs, notes
