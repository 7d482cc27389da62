"""The serving index: a versioned store of a corpus's documents and vectors, searched dense, BM25 or hybrid.

`domainfit.index.backend` holds the protocol (`IndexBackend`) and its data
types; `lance` (the default, embedded) and `qdrant` implement it; `embed` keeps
a store's vectors in step with a corpus (incremental, resumable re-embedding).
"""
