"""Compression: dimension reduction, quantisation and product quantisation, measured and priced.

Modules, one job each:

* `config` – the ``[compress]``, ``[cost]`` and ``[calibrate]`` sections of ``domainfit.toml``.
* `spec` – names of configurations (``pca-128/int8``, ``trunc-384/binary+int8x4``) and the sweep grid.
* `reduce` – Matryoshka truncation and PCA, both re-normalised.
* `quantize` – float16, int8 (ranges calibrated on the corpus) and binary codes.
* `stores` – searchable FAISS stores over those codes, with pairwise scoring.
* `pipeline` – a reducer, a store and optional rescoring, built from a spec.
* `latency` – per-query latency (batch and single query).
* `sweep` – evaluates every configuration against float32 at full dimension.
* `pareto` – the quality / bytes / latency frontier and the operating point.
* `results` – what a sweep measured and chose (the content of ``results.json``).
* `embed` – a split's embeddings through an embedding cache.
* `cost`, `probe` – cost of ownership with storage tiers, and the throughput probe.
* `threshold` – precision–recall curves and the F-beta threshold (used by `domainfit.stages.calibrate`).

The stages over a workspace are `domainfit.stages.compress`, `domainfit.stages.cost` and
`domainfit.stages.calibrate`; the frontier PNG, ``summary.md`` and the terminal table are
rendered by `domainfit.render.frontier` and `domainfit.render.compress`.

Nothing is imported here, so ``domainfit.config`` can import the config
sections without loading FAISS or sentence-transformers.
"""
