"""Dimension reduction: Matryoshka truncation and PCA fitted on corpus embeddings.

Both return L2-normalised float32 rows, so inner product stays cosine similarity.
"""

from __future__ import annotations

import numpy as np

from domainfit.core.errors import UsageError


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Return ``x`` (n, d) as float32 with unit-length rows (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class Reducer:
    """Maps full-width embeddings to ``dim`` dimensions, re-normalised.

    Subclasses implement `fit` (on corpus embeddings) and `apply`.
    ``fixed_bytes`` is what must be stored besides the vectors (e.g. a PCA matrix).
    """

    kind = "identity"

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise UsageError(f"target dimension must be >= 1, got {dim}")
        self.dim = dim

    @property
    def fixed_bytes(self) -> int:
        """Bytes stored once for the whole index (not per vector)."""
        return 0

    def fit(self, docs: np.ndarray) -> Reducer:
        """Learn what the reduction needs from corpus embeddings (n, D); returns self."""
        if docs.ndim != 2 or docs.shape[1] < self.dim:
            raise UsageError(f"cannot reduce {docs.shape[-1]}-d embeddings to {self.dim} dimensions")
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Reduce embeddings (n, D) to (n, dim), unit-length float32 rows."""
        raise NotImplementedError


class Truncate(Reducer):
    """Matryoshka truncation: keep the first ``dim`` coordinates, then re-normalise."""

    kind = "truncate"

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Keep the first ``dim`` columns of ``x`` (n, D) and re-normalise the rows."""
        return l2_normalise(np.asarray(x)[:, : self.dim])


class PCA(Reducer):
    """PCA fitted on the corpus: centre with the corpus mean, project on the top ``dim`` components, re-normalise.

    Components are the top eigenvectors of the corpus covariance matrix
    (float64, D × D, so fitting costs O(n·D²) whatever the corpus size), each
    sign fixed so its largest-magnitude loading is positive (deterministic
    across runs). Needs at least ``dim`` documents.
    """

    kind = "pca"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.explained_variance_ratio: float = 0.0

    @property
    def fixed_bytes(self) -> int:
        """The float32 projection matrix and mean vector."""
        if self.components is None or self.mean is None:
            return 0
        return int(self.components.size * 4 + self.mean.size * 4)

    def fit(self, docs: np.ndarray) -> PCA:
        """Fit the mean and the top ``dim`` principal components on corpus embeddings (n, D)."""
        super().fit(docs)
        if docs.shape[0] < self.dim:
            raise UsageError(f"PCA to {self.dim} dimensions needs at least {self.dim} documents, got {docs.shape[0]}")
        data = np.asarray(docs, dtype=np.float64)
        mean = data.mean(axis=0)
        centred = data - mean
        variance, vectors = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(variance)[::-1]
        variance, comps = np.clip(variance[order], 0, None), vectors[:, order[: self.dim]].T
        signs = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
        comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
        self.explained_variance_ratio = float(variance[: self.dim].sum() / max(variance.sum(), 1e-30))
        self.mean = mean.astype(np.float32)
        self.components = np.ascontiguousarray(comps, dtype=np.float32)
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Project embeddings (n, D) on the fitted components and re-normalise; raises if not fitted."""
        if self.components is None or self.mean is None:
            raise RuntimeError("PCA.apply called before fit")
        return l2_normalise((np.asarray(x, dtype=np.float32) - self.mean) @ self.components.T)


def make_reducer(kind: str, dim: int) -> Reducer:
    """Return an unfitted `Truncate` or `PCA` reducer for ``kind`` in {"truncate", "pca"}."""
    if kind == "truncate":
        return Truncate(dim)
    if kind == "pca":
        return PCA(dim)
    raise UsageError(f"unknown reduction {kind!r}: use 'truncate' or 'pca'")
