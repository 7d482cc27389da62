"""Scalar and binary quantisation through ``sentence_transformers.quantize_embeddings``.

* int8: one (min, max) range per dimension, calibrated on corpus embeddings;
  a value becomes ``floor((x - min) / step) - 128`` with ``step = (max - min) / 255``
  and decodes to the centre of its bucket, ``min + (code + 128.5) * step``.
* binary: one bit per dimension (``x > 0``), packed eight to a byte (``ubinary``);
  two codes compare by Hamming distance, turned into the similarity
  ``1 - 2 * hamming / dim`` (the cosine of the two sign vectors).
"""

from __future__ import annotations

import math

import numpy as np

#: Bytes per dimension for each precision (binary packs 8 dimensions per byte).
BYTES_PER_DIMENSION: dict[str, float] = {"float32": 4.0, "float16": 2.0, "int8": 1.0, "binary": 0.125}


def vector_bytes(dims: int, precision: str) -> int:
    """Bytes one ``dims``-dimensional vector takes at ``precision`` (binary rounds up to whole bytes)."""
    if precision not in BYTES_PER_DIMENSION:
        raise ValueError(f"unknown precision {precision!r}; use one of {sorted(BYTES_PER_DIMENSION)}")
    if precision == "binary":
        return math.ceil(dims / 8)
    return int(dims * BYTES_PER_DIMENSION[precision])


def load_quantizer() -> None:
    """Import sentence-transformers ahead of time, so its import is not counted in a build time."""
    import sentence_transformers  # noqa: F401


#: Rows quantised per call, so temporaries stay small for large corpora.
_BLOCK_ROWS = 1 << 16


def _quantize(embeddings: np.ndarray, precision: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """Call sentence-transformers' `quantize_embeddings` on a float32 matrix, block by block."""
    from sentence_transformers import quantize_embeddings

    blocks = []
    for start in range(0, max(len(embeddings), 1), _BLOCK_ROWS):
        block = np.asarray(embeddings[start : start + _BLOCK_ROWS], dtype=np.float32)
        out = quantize_embeddings(block, precision=precision, ranges=ranges)  # type: ignore[arg-type]
        assert isinstance(out, np.ndarray)
        blocks.append(out)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


class Int8Codec:
    """int8 codes with per-dimension ranges calibrated on corpus embeddings.

    Inputs: ``ranges``, shape (2, d): row 0 the minimum, row 1 the maximum of each dimension.
    Example: ``codec = Int8Codec.calibrate(doc_vectors); codes = codec.encode(doc_vectors)``.
    """

    def __init__(self, ranges: np.ndarray) -> None:
        ranges = np.asarray(ranges, dtype=np.float32)
        if ranges.ndim != 2 or ranges.shape[0] != 2:
            raise ValueError(f"int8 ranges must have shape (2, d), got {ranges.shape}")
        self.ranges = ranges

    @classmethod
    def calibrate(cls, calibration: np.ndarray) -> Int8Codec:
        """Ranges from calibration embeddings (n, d): the per-dimension minimum and maximum."""
        calibration = np.asarray(calibration, dtype=np.float32)
        if calibration.ndim != 2 or calibration.shape[0] < 2:
            raise ValueError("int8 calibration needs at least two embeddings")
        return cls(np.vstack([calibration.min(axis=0), calibration.max(axis=0)]))

    @property
    def dim(self) -> int:
        """Number of dimensions the codec covers."""
        return int(self.ranges.shape[1])

    @property
    def steps(self) -> np.ndarray:
        """Bucket width of each dimension, ``(max - min) / 255`` (1 where the range is empty)."""
        steps = (self.ranges[1] - self.ranges[0]) / 255
        return np.where(steps == 0, 1, steps).astype(np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Quantise float embeddings (n, d) to int8 codes (n, d) with the calibrated ranges."""
        return _quantize(x, "int8", self.ranges)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Map int8 codes (..., d) back to float32 values at the centre of their buckets."""
        return (self.ranges[0] + (codes.astype(np.float32) + 128.5) * self.steps).astype(np.float32)

    @property
    def fixed_bytes(self) -> int:
        """Bytes stored once: the float32 ranges."""
        return int(self.ranges.size * 4)


def binary_codes(x: np.ndarray) -> np.ndarray:
    """Pack the signs of float embeddings (n, d) into uint8 codes (n, ceil(d / 8)), bit = ``x > 0``."""
    return _quantize(x, "ubinary")


def hamming_to_similarity(hamming: np.ndarray, dim: int) -> np.ndarray:
    """Turn Hamming distances between ``dim``-bit codes into similarities in [-1, 1]: ``1 - 2 h / dim``."""
    return (1.0 - 2.0 * np.asarray(hamming, dtype=np.float32) / dim).astype(np.float32)


def hamming_distances(query_codes: np.ndarray, doc_codes: np.ndarray) -> np.ndarray:
    """Hamming distances between each query code (nq, b) and the document codes (nq, m, b) paired with it.

    Output: (nq, m) int32 distances (popcount of XOR).
    """
    xor = np.bitwise_xor(query_codes[:, None, :], doc_codes)
    popcount = getattr(np, "bitwise_count", None)  # numpy >= 2.0
    if popcount is not None:
        return popcount(xor).sum(axis=-1, dtype=np.int32)
    return np.unpackbits(xor, axis=-1).sum(axis=-1, dtype=np.int32)
