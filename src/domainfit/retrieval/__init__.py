"""Retrieval baselines: BM25, exact dense search, hybrid fusion and reranking."""
