"""On-disk embedding cache keyed by (model fingerprint, text hash).

Layout: ``<root>/<fingerprint>/<shard>.npy`` with ``<shard>.keys`` beside it
(one text hash per line). A shard counts only once its keys file exists, and
both are written atomically, so an interrupted run never corrupts the cache.
Arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from domainfit.core.files import atomic_write_bytes, atomic_write_text


def text_key(text: str, prompt: str = "") -> str:
    """Hash a text (and the prompt prepended to it) into a cache key."""
    return hashlib.blake2b(f"{prompt}\x00{text}".encode(), digest_size=16).hexdigest()


class EmbeddingCache:
    """Embeddings of one model, stored as append-only numpy shards.

    Inputs: the cache root and the model fingerprint. ``get`` returns the
    cached vectors and the positions that still need encoding; ``put`` stores
    newly encoded vectors as a new shard.
    """

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.folder = root / fingerprint
        self._index: dict[str, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._load()

    def _load(self) -> None:
        """Read every complete shard (those with a keys file) into memory-mapped arrays."""
        if not self.folder.is_dir():
            return
        for keys_file in sorted(self.folder.glob("*.keys")):
            array_file = keys_file.with_suffix(".npy")
            if not array_file.is_file():
                continue
            keys = keys_file.read_text().split()
            array = np.load(array_file, mmap_mode="r", allow_pickle=False)
            if array.shape[0] != len(keys):
                continue  # inconsistent shard: ignore, it will be re-encoded
            shard = len(self._shards)
            self._shards.append(array)
            for row, key in enumerate(keys):
                self._index[key] = (shard, row)

    def __len__(self) -> int:
        """Return how many texts are cached."""
        return len(self._index)

    def get(self, keys: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """Return ({position: vector} for cached keys, positions of keys not cached)."""
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for pos, key in enumerate(keys):
            hit = self._index.get(key)
            if hit is None:
                missing.append(pos)
            else:
                found[pos] = np.asarray(self._shards[hit[0]][hit[1]])
        return found, missing

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (one row per key) as a new shard."""
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{len(list(self.folder.glob('*.keys'))):06d}-{keys[0][:8]}"
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self.folder / f"{name}.npy", buffer.getvalue())
        atomic_write_text(self.folder / f"{name}.keys", "\n".join(keys) + "\n")
        shard = len(self._shards)
        self._shards.append(np.asarray(vectors, dtype=np.float32))
        for row, key in enumerate(keys):
            self._index[key] = (shard, row)
