"""How a model version's vectors are stored: full float32, or an operating point ``compress`` measured.

A `StoredPrecision` is one of compress's configurations (`domainfit.compress.spec`)
that an index can hold and search exactly as compress measured it:

* reduction: the model's own width (``full``) or Matryoshka truncation to
  ``dim`` coordinates, re-normalised (`domainfit.compress.reduce.Truncate`);
* store: ``float32``, ``float16``, ``int8`` (compress's codes: per-dimension
  ranges calibrated on the corpus, a float query scored against each code's
  bucket centre, `domainfit.compress.quantize.Int8Codec`) or ``binary`` (sign
  bits packed eight to a byte, similarity ``1 - 2 h / dim``);
* rescoring (binary only): ``+float32x<o>`` or ``+int8x<o>``: the binary search
  returns ``k * o`` candidates, ranked by the rescoring copy's score.

PCA, PQ and IVF-PQ are not stored: their codebooks and projection belong to a
FAISS index, not to a column a vector store searches (`UsageError` names them).

Callers hand the index full-width, unit-length float32 vectors (documents and
queries alike); the store applies the precision (`codes`, `rescore_codes`,
`reduce`), so queries are reduced and quantised exactly as the documents were.
The precision of a version is recorded with its vectors (LanceDB: the vector
column's field metadata; Qdrant: the collection metadata), so tags and restores
carry it, and the serving pointer names it.

The ``[index] precision`` setting (`resolve_precision`): ``float32`` (the
default), ``operating-point`` (the configuration ``compress`` chose, read from
``<workspace>/compress/results.json``), a compress configuration name such as
``trunc-256/int8`` or ``full/binary+float32x4``, or a short form: ``int8``,
``float16``, ``binary``, ``binary+float32x4`` (full width) or ``truncate:256``
(``trunc-256/float32``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from domainfit.compress.spec import FULL_PRECISION, parse_spec
from domainfit.core.errors import UsageError

#: The setting that takes compress's chosen operating point.
OPERATING_POINT = "operating-point"
#: Stores an index holds natively (or, for int8, as codes scored by domainfit: see `domainfit.index.lance`).
STORES: tuple[str, ...] = ("float32", "float16", "int8", "binary")
StoredKind = Literal["float32", "float16", "int8", "binary"]
_SHORT = re.compile(r"^(?P<store>float32|float16|int8|binary)(?P<tail>\+(?:int8|float32)x\d+)?$")
_TRUNCATE = re.compile(r"^truncate:(?P<dim>\d+)(?:/(?P<rest>.+))?$")
#: Largest width a setting is checked against before the model is known.
_ANY_WIDTH = 1 << 16


def spec_name(setting: str, full_dim: int) -> str:
    """Return compress's configuration name of a precision setting for a model of width ``full_dim``.

    ``int8`` → ``full/int8``; ``truncate:256`` → ``trunc-256/float32``;
    ``truncate:256/int8`` → ``trunc-256/int8``; compress names pass through.
    Raises `UsageError` for a malformed setting (not for ``operating-point``,
    which `resolve_precision` reads from compress).
    """
    text = setting.strip()
    short = _SHORT.match(text)
    if short:
        text = f"full/{short['store']}{short['tail'] or ''}"
    truncate = _TRUNCATE.match(text)
    if truncate:
        text = f"trunc-{truncate['dim']}/{truncate['rest'] or 'float32'}"
    parse_spec(text, full_dim)  # raises UsageError with the expected forms
    return text


def check_setting(setting: str) -> str:
    """Check a ``[index] precision`` value before the model is known; return it (raises ValueError)."""
    if setting.strip() == OPERATING_POINT:
        return OPERATING_POINT
    try:
        name = spec_name(setting, _ANY_WIDTH)
        StoredPrecision.of(name, _ANY_WIDTH)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return setting.strip()


@dataclass(frozen=True)
class StoredPrecision:
    """How one model version's vectors are stored and searched (see the module docstring).

    ``name`` is compress's configuration name (``full/float32``, ``trunc-256/int8``,
    ``full/binary+float32x4``); ``full_dim`` the model's width (what callers hand in);
    ``dim`` the stored width; ``ranges`` the int8 ranges, shape (2, dim), when the
    store or the rescoring copy is int8 (None until `calibrated`).
    """

    name: str
    full_dim: int
    dim: int
    store: StoredKind
    rescore: Literal["int8", "float32"] | None = None
    oversample: int = 1
    ranges: np.ndarray | None = None
    source: str = ""

    @classmethod
    def of(cls, name: str, full_dim: int, *, source: str = "") -> StoredPrecision:
        """Return the precision of a compress configuration name (raises `UsageError` for one an index cannot hold)."""
        spec = parse_spec(name, full_dim)
        if spec.reduction == "pca" or spec.store in ("pq", "ivfpq"):
            raise UsageError(
                f"precision {name!r}: an index stores full-width or truncated vectors as float32, float16, int8 "
                "or binary (optionally rescored); PCA and (IVF-)PQ codebooks live in a FAISS index, not in a "
                "vector store's column"
            )
        if spec.rescore is not None and spec.store != "binary":
            raise UsageError(f"precision {name!r}: only binary vectors are stored with a rescoring copy")
        canonical = FULL_PRECISION if spec.name == f"trunc-{full_dim}/float32" else spec.name
        return cls(
            name=canonical,
            full_dim=full_dim,
            dim=spec.dim,
            store=spec.store,  # type: ignore[arg-type]
            rescore=spec.rescore,
            oversample=spec.oversample,
            source=source,
        )

    @classmethod
    def full(cls, full_dim: int) -> StoredPrecision:
        """Return the uncompressed precision: float32 at the model's width."""
        return cls(FULL_PRECISION, full_dim, full_dim, "float32")

    # -- what it needs and costs -----------------------------------------------------------------

    @property
    def is_full(self) -> bool:
        """True for float32 at the model's width (no reduction, no quantisation)."""
        return self.store == "float32" and self.dim == self.full_dim and self.rescore is None

    @property
    def needs_ranges(self) -> bool:
        """True when the store or the rescoring copy is int8 (ranges must be calibrated on the corpus)."""
        return self.store == "int8" or self.rescore == "int8"

    @property
    def stored_width(self) -> int:
        """Elements of the stored vector: ``dim``, or ``dim / 8`` bytes for packed binary."""
        return self.dim // 8 if self.store == "binary" else self.dim

    def bytes_per_vector(self) -> float:
        """Bytes of one searched vector (float32 4/dim, float16 2, int8 1, binary 1/8)."""
        from domainfit.compress.quantize import vector_bytes

        return float(vector_bytes(self.dim, self.store))

    def rescore_bytes_per_vector(self) -> float:
        """Bytes of one vector's rescoring copy (0 without rescoring)."""
        from domainfit.compress.quantize import vector_bytes

        return float(vector_bytes(self.dim, self.rescore)) if self.rescore else 0.0

    def slug(self) -> str:
        """Return a version-name suffix for this precision ("" for full float32), e.g. ``trunc256_int8``."""
        if self.is_full:
            return ""
        red = f"trunc{self.dim}_" if self.dim != self.full_dim else ""
        tail = f"_{self.rescore}x{self.oversample}" if self.rescore else ""
        return f"{red}{self.store}{tail}"

    # -- calibration -----------------------------------------------------------------------------

    def calibrated(self, ranges: np.ndarray) -> StoredPrecision:
        """Return a copy with int8 ranges (2, dim) set."""
        ranges = np.asarray(ranges, dtype=np.float32)
        if ranges.shape != (2, self.dim):
            raise UsageError(f"int8 ranges of shape {ranges.shape} do not cover {self.dim} dimensions")
        return replace(self, ranges=ranges)

    def _codec(self) -> Any:
        """Return the int8 codec of the calibrated ranges."""
        from domainfit.compress.quantize import Int8Codec

        if self.ranges is None:
            raise UsageError(f"precision {self.name}: the int8 ranges were not calibrated")
        return Int8Codec(self.ranges)

    # -- encoding --------------------------------------------------------------------------------

    def reduce(self, x: np.ndarray) -> np.ndarray:
        """Return full-width vectors (n, full_dim) at the stored width, re-normalised (as compress truncates)."""
        from domainfit.compress.reduce import Truncate

        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.full_dim:
            raise UsageError(f"vectors of shape {x.shape} do not have dimension {self.full_dim}")
        if self.is_full:  # stored as given (bench's exact search)
            return np.ascontiguousarray(x)
        return Truncate(self.dim).apply(x)

    def _int8(self, reduced: np.ndarray) -> np.ndarray:
        """Return int8 codes of reduced vectors (values outside the calibrated ranges are clipped to them)."""
        codec = self._codec()
        clipped = np.clip(reduced, codec.ranges[0], codec.ranges[1])
        return np.asarray(codec.encode(clipped), dtype=np.int8)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """Return the stored vectors of full-width vectors: float32 / float16 rows, int8 codes or packed bits."""
        reduced = self.reduce(x)
        if self.store == "float32":
            return reduced
        if self.store == "float16":
            return reduced.astype(np.float16)
        if self.store == "int8":
            return self._int8(reduced)
        from domainfit.compress.quantize import binary_codes

        return np.asarray(binary_codes(reduced), dtype=np.uint8)

    def rescore_codes(self, x: np.ndarray) -> np.ndarray | None:
        """Return the rescoring copy of full-width vectors (None without rescoring)."""
        if self.rescore is None:
            return None
        reduced = self.reduce(x)
        return reduced if self.rescore == "float32" else self._int8(reduced)

    def int8_query(self, reduced: np.ndarray) -> tuple[np.ndarray, float]:
        """Return ``(q', offset)`` with ``q · decode(c) = q' · c + offset`` for every int8 code ``c``.

        ``decode(c) = min + (c + 128.5) step`` (compress's bucket centre), so
        ``q' = q * step`` and ``offset = q · (min + 128.5 step)``.
        """
        codec = self._codec()
        q = np.asarray(reduced, dtype=np.float32)
        return q * codec.steps, float(q @ (codec.ranges[0] + 128.5 * codec.steps))

    def int8_scores(self, reduced_query: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Return compress's asymmetric int8 scores of one reduced query against int8 codes (n, dim)."""
        return (self._codec().decode(np.asarray(codes, dtype=np.int8)) @ np.asarray(reduced_query, np.float32)).astype(
            np.float32
        )

    # -- record ----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Return the record kept with the vectors (name, widths, ranges as lists)."""
        return {
            "name": self.name,
            "full_dim": self.full_dim,
            "dim": self.dim,
            "store": self.store,
            "rescore": self.rescore,
            "oversample": self.oversample,
            "ranges": self.ranges.tolist() if self.ranges is not None else None,
            "source": self.source,
            "bytes_per_vector": self.bytes_per_vector(),
            "rescore_bytes_per_vector": self.rescore_bytes_per_vector(),
        }

    def to_text(self) -> str:
        """Return the record as compact JSON (for Arrow field metadata)."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredPrecision:
        """Rebuild a precision from its record."""
        found = cls.of(str(data["name"]), int(data["full_dim"]), source=str(data.get("source") or ""))
        ranges = data.get("ranges")
        return found.calibrated(np.asarray(ranges, dtype=np.float32)) if ranges is not None else found


class RangeCalibration:
    """Running per-dimension minimum and maximum of reduced corpus vectors: the int8 ranges compress calibrates.

    Feed it every document's full-width vector (`add`, batch by batch); `ranges`
    returns the (2, dim) minimum and maximum, which is what
    `domainfit.compress.quantize.Int8Codec.calibrate` computes over the same corpus.
    """

    def __init__(self, precision: StoredPrecision) -> None:
        self.precision = precision
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None
        self.rows = 0

    def add(self, vectors: np.ndarray) -> None:
        """Fold a batch of full-width vectors into the ranges."""
        if not len(vectors):
            return
        reduced = self.precision.reduce(vectors)
        low, high = reduced.min(axis=0), reduced.max(axis=0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)
        self.rows += len(reduced)

    def ranges(self) -> np.ndarray:
        """Return the (2, dim) ranges (raises `UsageError` with fewer than two vectors)."""
        if self.low is None or self.high is None or self.rows < 2:
            raise UsageError("int8 ranges need the vectors of at least two documents")
        return np.vstack([self.low, self.high]).astype(np.float32)


def new_version_precision(
    have: Mapping[str, StoredPrecision], version: str, dimension: int, precision: StoredPrecision | None
) -> StoredPrecision | None:
    """Check a version a backend is asked to add against what it already stores (``have``).

    Returns the precision to add it at (default float32), or None when it is
    already there as asked. Raises `UsageError` for a precision of another
    dimension, a version stored with another dimension or precision, or int8
    ranges not yet calibrated.
    """
    wanted = precision or StoredPrecision.full(dimension)
    if wanted.full_dim != dimension:
        raise UsageError(f"precision {wanted.name} is for dimension {wanted.full_dim}, not {dimension}")
    if version in have:
        if have[version].full_dim != dimension:
            raise UsageError(
                f"model version {version!r} has dimension {have[version].full_dim} in the index, not {dimension}"
            )
        if precision is not None and have[version].name != wanted.name:
            raise UsageError(
                f"model version {version!r} is stored as {have[version].name} in the index, not {wanted.name}"
            )
        return None
    if wanted.needs_ranges and wanted.ranges is None:
        raise UsageError(f"precision {wanted.name}: calibrate the int8 ranges before adding the version")
    return wanted


def operating_point(results: Mapping[str, Any]) -> tuple[str, str]:
    """Return (configuration name, model) of compress's chosen operating point in its ``results.json``.

    Raises `UsageError` when compress chose none (no configuration met its constraints).
    """
    chosen = (results.get("operating_point") or {}).get("name")
    if not chosen:
        reason = (results.get("operating_point") or {}).get("reason", "it chose none")
        raise UsageError(f"index.precision = {OPERATING_POINT!r}, but compress has no operating point: {reason}")
    return str(chosen), str(results.get("model", ""))


def read_operating_point(results_path: Path) -> tuple[str, str, str]:
    """Return (configuration, model, model fingerprint) of the operating point in compress's ``results.json``.

    Raises `UsageError` when compress has not run (no file), its record is
    unreadable, or it chose no operating point.
    """
    try:
        data = json.loads(results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"index.precision = {OPERATING_POINT!r} needs compress's operating point, but {results_path} "
            "does not exist: run `domainfit compress` first, or set an explicit precision"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{results_path}: cannot read compress's results ({exc})") from None
    name, model = operating_point(data)
    return name, model, str(data.get("model_fingerprint", ""))


def resolve_precision(setting: str, full_dim: int, fingerprint: str, results_path: Path) -> StoredPrecision:
    """Return the precision a ``[index] precision`` setting asks for, for a model of this width and fingerprint.

    ``operating-point`` reads compress's choice (``results_path``) and refuses one
    measured on another model (its fingerprint differs): the frontier is the
    model's own. Raises `UsageError` for a setting the index cannot store.
    """
    if setting.strip() == OPERATING_POINT:
        name, model, measured = read_operating_point(results_path)
        if measured and measured != fingerprint:
            raise UsageError(
                f"index.precision = {OPERATING_POINT!r}: compress chose {name} for {model}, not for the indexed "
                "model; run compress on the deployed model, or set an explicit precision"
            )
        return StoredPrecision.of(name, full_dim, source=f"compress operating point ({results_path})")
    return StoredPrecision.of(spec_name(setting, full_dim), full_dim, source=f"index.precision = {setting!r}")


def calibrate_ranges(
    precision: StoredPrecision,
    texts: Sequence[str],
    encode: Callable[[list[str]], np.ndarray],
    *,
    batch_size: int = 256,
) -> StoredPrecision:
    """Return ``precision`` with its int8 ranges calibrated on the corpus (unchanged when it needs none).

    Every text is encoded (``encode``: texts → full-width vectors, batch by
    batch) and the per-dimension minimum and maximum of the reduced vectors
    kept: the ranges compress's `Int8Codec.calibrate` takes from the same corpus.
    """
    if not precision.needs_ranges:
        return precision
    from domainfit.core.progress import progress_bar

    calibration = RangeCalibration(precision)
    with progress_bar("calibrating int8 ranges", len(texts), unit="docs") as advance:
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            calibration.add(encode(batch))
            advance(len(batch))
    return precision.calibrated(calibration.ranges())
