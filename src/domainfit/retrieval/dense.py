"""Dense retrieval: encode with a sentence-transformers model, search exactly.

Embeddings are L2-normalised, so inner product is cosine similarity. Search is
exact (numpy blocks or FAISS ``IndexFlatIP``), so that approximate-search
recall loss is never mistaken for model quality.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from domainfit.core.models import DEFAULT_MODEL, load_bi_encoder, model_fingerprint, set_max_seq_length
from domainfit.core.progress import progress_bar
from domainfit.core.types import Document, Run
from domainfit.data.chunking import TruncationReport, check_truncation
from domainfit.retrieval.cache import EmbeddingCache, text_key
from domainfit.retrieval.config import EncodeConfig
from domainfit.retrieval.query_adapter import QueryMap, adapter_base_model, is_adapter_folder, load_query_adapter
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.text.model_text import normalization_mismatch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.retrieval.backends import BackendChoice

SearchBackend = Literal["auto", "numpy", "faiss"]


def is_routed(model: SentenceTransformer) -> bool:
    """Return True when the model has separate query and document encoders (a sentence-transformers ``Router``)."""
    from sentence_transformers.sentence_transformer.modules import Router

    return any(isinstance(module, Router) for module in model.children())


def _cache_keys(
    model: SentenceTransformer, prepared: list[str], prompt_name: str | None, task: str | None
) -> list[str]:
    """Return the embedding-cache key of each prepared text under a prompt name and route (see `encode_texts`)."""
    prompt = (model.prompts or {}).get(prompt_name or "") or ""
    if task and is_routed(model):  # one text encodes differently per route: keep their cache keys apart
        prompt = f"{prompt}\x00route={task}"
    return [text_key(t, prompt) for t in prepared]


def encode_texts(
    model: SentenceTransformer,
    texts: list[str],
    *,
    batch_size: int = 32,
    prompt_name: str | None = None,
    cache: EmbeddingCache | None = None,
    description: str = "encoding",
    task: str | None = None,
    text: TextConfig = DEFAULT_TEXT,
) -> np.ndarray:
    """Encode ``texts`` into L2-normalised float32 vectors, one row per text.

    ``task`` (``"query"`` or ``"document"``) picks the route of a model with
    separate query and document encoders (see `is_routed`); other models ignore it.

    Texts are prepared first under the ``[text]`` settings ``text`` (documents at
    index time and queries at search time alike). Cached texts are read from ``cache``; the
    rest are encoded longest first (as sentence-transformers does), with a
    progress bar, and stored back.
    """
    texts = text.prepare_all(list(texts))
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = int(get_dim() or 0)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    keys = _cache_keys(model, texts, prompt_name, task)
    missing = list(range(len(texts)))
    if cache is not None:
        found, missing = cache.get(keys)
        for pos, vec in found.items():
            out[pos] = vec
    # encode each distinct missing text once
    unique: dict[str, int] = {}
    for pos in missing:
        unique.setdefault(keys[pos], pos)
    order = sorted(unique.values(), key=lambda p: -len(texts[p]))
    chunk = max(batch_size * 8, 256)
    encoded: dict[str, np.ndarray] = {}
    with progress_bar(description, len(order)) as advance:
        for start in range(0, len(order), chunk):
            positions = order[start : start + chunk]
            vectors = model.encode(
                [texts[p] for p in positions],
                batch_size=batch_size,
                prompt_name=prompt_name,
                normalize_embeddings=True,
                task=task,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for p, vec in zip(positions, vectors, strict=True):
                encoded[keys[p]] = vec
            advance(len(positions))
    for pos in missing:
        out[pos] = encoded[keys[pos]]
    if cache is not None and encoded:
        cache.put(list(encoded), np.stack(list(encoded.values())))
    return out


def exact_search(
    queries: np.ndarray, docs: np.ndarray, k: int, backend: SearchBackend = "auto", block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product search.

    Inputs: query matrix (nq, d) and document matrix (nd, d), float32.
    Output: (indices, scores), each (nq, min(k, nd)), best first; ties go to the lower index.
    """
    k = min(k, docs.shape[0])
    # "auto" uses numpy: FAISS's flat index scans query by query below ~128k queries
    # and measured 2-3x slower than a blocked numpy matrix product (bench/bench_search.py)
    if backend == "faiss":
        import faiss

        index = faiss.IndexFlatIP(docs.shape[1])
        index.add(np.ascontiguousarray(docs, dtype=np.float32))
        scores, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return idx.astype(np.int64), scores
    all_idx = np.empty((queries.shape[0], k), dtype=np.int64)
    all_scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], block):
        sims = queries[start : start + block] @ docs.T
        part = (
            np.argpartition(-sims, k - 1, axis=1)[:, :k]
            if k < docs.shape[0]
            else np.tile(np.arange(docs.shape[0]), (sims.shape[0], 1))
        )
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        all_idx[start : start + block] = np.take_along_axis(part, order, axis=1)
        all_scores[start : start + block] = np.take_along_axis(part_scores, order, axis=1)
    return all_idx, all_scores


def _query_adapter(model: str | SentenceTransformer, explicit: str | Path | None) -> tuple[QueryMap | None, str | None]:
    """Return (the query map, its folder) of an explicit adapter or of a model path that is an adapter folder."""
    folder = explicit if explicit is not None else (model if isinstance(model, str) else None)
    if folder is None or not is_adapter_folder(folder):
        if explicit is not None:
            raise ValueError(f"{explicit}: no query adapter (query_adapter.json) in this folder")
        return None, None
    return load_query_adapter(folder), str(folder)


class DenseRetriever:
    """Bi-encoder retrieval with an on-disk embedding cache.

    Inputs: a model name or path (resolved offline first, see `domainfit.core.models`),
    an optional cache folder, batch size, max sequence length, the prompt names
    for queries and documents (used when the model defines them), the search
    backend, the ``[text]`` settings texts are prepared under, the ``[encode]``
    settings with the folder fast-path exports are cached in (default: ``encoders``
    beside the embedding cache folder; with a backend other
    than torch, the first texts encoded choose it, `domainfit.retrieval.backends`,
    and the choice is in ``backend_choice``), and an optional
    query adapter folder (`domainfit.train.adapter`) applied to query vectors
    only. A model path that is itself an adapter folder (``train/model`` of the
    ``adapter`` level) loads the adapter's base model for documents and maps queries.
    Example: ``DenseRetriever("sentence-transformers/all-MiniLM-L6-v2")``.
    """

    def __init__(
        self,
        model: str | SentenceTransformer = DEFAULT_MODEL,
        *,
        cache_dir: Path | None = None,
        batch_size: int = 32,
        max_seq_length: int | None = None,
        query_prompt_name: str | None = None,
        document_prompt_name: str | None = None,
        backend: SearchBackend = "auto",
        text: TextConfig = DEFAULT_TEXT,
        encode: EncodeConfig | None = None,
        export_dir: Path | None = None,
        query_adapter: str | Path | None = None,
    ) -> None:
        self.text = text
        self.encode_config = encode or EncodeConfig()
        if export_dir is None and cache_dir is not None:  # beside the embedding cache: <workspace>/cache/encoders
            export_dir = Path(cache_dir).parent / "encoders"
        self.export_dir, self.cache_dir = export_dir, cache_dir
        self.backend_choice: BackendChoice | None = None
        self.model_name = model if isinstance(model, str) else str(getattr(model, "_domainfit_path", "in-memory"))
        self.query_map, self.query_adapter = _query_adapter(model, query_adapter)
        if isinstance(model, str) and self.query_adapter is not None and query_adapter is None:
            model = adapter_base_model(model)  # an adapter folder: documents are the base model's, untouched
        self.model = load_bi_encoder(model, max_seq_length=max_seq_length) if isinstance(model, str) else model
        if max_seq_length is not None:
            set_max_seq_length(self.model, max_seq_length)
        prompts = self.model.prompts or {}
        self.query_prompt_name = query_prompt_name or ("query" if "query" in prompts else None)
        self.document_prompt_name = document_prompt_name or ("document" if "document" in prompts else None)
        self.batch_size = batch_size
        self.backend: SearchBackend = backend
        self.fingerprint = model_fingerprint(self.model)
        self.cache = EmbeddingCache(cache_dir, self.fingerprint) if cache_dir is not None else None
        self._doc_ids: list[str] = []
        self._doc_matrix: np.ndarray | None = None
        self.truncation: TruncationReport | None = None  # documents over the window, set by `index`
        mismatch = normalization_mismatch(getattr(self.model, "_domainfit_path", None), text)
        if mismatch:
            warnings.warn(mismatch, stacklevel=2)

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob, for reports and manifests."""
        return {
            "model": self.model_name,
            "fingerprint": self.fingerprint,
            "max_seq_length": self.model.max_seq_length,
            "batch_size": self.batch_size,
            "query_prompt_name": self.query_prompt_name,
            "document_prompt_name": self.document_prompt_name,
            "backend": self.backend,
            "text_normalization": self.text.normalization(),
            **({"encode": self.backend_choice.to_json()} if self.backend_choice is not None else {}),
            "query_adapter": self.query_adapter,
        }

    def choose_backend(self, texts: list[str]) -> BackendChoice:
        """Choose the encoding backend on ``texts`` once (see `domainfit.retrieval.backends`) and encode with it.

        The embedding cache moves to the chosen backend's fingerprint, so vectors of
        different runtimes are never mixed. Returns the choice (the same one on later calls).
        """
        if self.backend_choice is None:
            from domainfit.retrieval.backends import choose_backend

            prepared = self.text.prepare_all(list(texts))
            self.backend_choice = choose_backend(
                self.model, prepared, self.encode_config, self.export_dir, batch_size=self.batch_size
            )
            if self.backend_choice.model is not self.model:
                self.model = self.backend_choice.model
                self.fingerprint = model_fingerprint(self.model)
                if self.cache_dir is not None:
                    self.cache = EmbeddingCache(self.cache_dir, self.fingerprint)
        return self.backend_choice

    def _encode(self, texts: list[str], prompt_name: str | None, what: str, task: str) -> np.ndarray:
        """Encode texts with one prompt and route (``task``) through the cache, with a progress bar."""
        if self.backend_choice is None and self.encode_config.backend != "torch":
            self.choose_backend(texts)
        return encode_texts(
            self.model,
            texts,
            batch_size=self.batch_size,
            prompt_name=prompt_name,
            cache=self.cache,
            description=f"encoding {what}",
            task=task,
            text=self.text,
        )

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Encode query texts (query prompt applied; then the query adapter, when there is one)."""
        vectors = self._encode(texts, self.query_prompt_name, "queries", "query")
        return self.query_map(vectors) if self.query_map is not None and len(texts) else vectors

    def encode_documents(self, texts: list[str], what: str = "documents") -> np.ndarray:
        """Encode document texts (document prompt applied); ``what`` names them on the progress bar."""
        return self._encode(texts, self.document_prompt_name, what, "document")

    def cached_documents(self, texts: list[str]) -> int:
        """Count the document texts whose vectors the embedding cache already holds (0 without a cache).

        Call after `choose_backend` when a fast path is asked for: the cache is the chosen runtime's.
        """
        if self.cache is None or not texts:
            return 0
        keys = _cache_keys(self.model, self.text.prepare_all(list(texts)), self.document_prompt_name, "document")
        found, _ = self.cache.get(keys)
        return len(found)

    def check_truncation(self, texts: list[str], what: str, *, query: bool = False) -> TruncationReport | None:
        """Count the texts longer than the model's window and warn once with counts (never truncate silently).

        Inputs: the texts as they will be encoded, what they are (``"documents"``...),
        and whether they are queries (for the prompt). Output: a `TruncationReport`,
        or None for a model without a Hugging Face tokenizer (a static model: it has no window).
        """
        name = self.query_prompt_name if query else self.document_prompt_name
        prompt = (self.model.prompts or {}).get(name or "") or ""
        if not callable(getattr(self.model, "tokenizer", None)):  # none, or a static model's (no window to exceed)
            return None
        label = Path(self.model_name.rstrip("/")).name or self.model_name
        return check_truncation(self.model, texts, what, label, prompt)

    def index(self, corpus: Mapping[str, Document]) -> None:
        """Encode (or read from cache) every document of the corpus."""
        self._doc_ids = list(corpus)
        texts = [doc.full_text() for doc in corpus.values()]
        self.truncation = self.check_truncation(texts, "documents")
        self._doc_matrix = self.encode_documents(texts)

    def search(self, queries: Mapping[str, str], k: int = 100) -> Run:
        """Search every query exactly; returns ``{qid: {doc_id: cosine}}``."""
        if self._doc_matrix is None:
            raise RuntimeError("DenseRetriever.search called before index")
        qids = list(queries)
        self.check_truncation([queries[qid] for qid in qids], "queries", query=True)
        q = self.encode_queries([queries[qid] for qid in qids])
        idx, scores = exact_search(q, self._doc_matrix, k, self.backend)
        return {
            qid: {self._doc_ids[int(i)]: float(s) for i, s in zip(idx[row], scores[row], strict=True)}
            for row, qid in enumerate(qids)
        }
