"""Run the retrieval systems of a benchmark: BM25, dense models, hybrids, reranking.

Shared by ``bench`` (baselines) and ``eval`` (base vs fine-tuned): each system's
run, mean metrics, settings and timing, the tuned hybrid weights and per-slice tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from domainfit.core.models import load_cross_encoder
from domainfit.core.types import Qrels, Run
from domainfit.data.beir import BeirDataset
from domainfit.evaluation.benchmark import Benchmark
from domainfit.evaluation.config import short_name
from domainfit.evaluation.metrics import per_query
from domainfit.evaluation.slices import slice_labels, slice_table
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.hybrid import convex, rrf, tune_convex
from domainfit.retrieval.lexical import BM25Retriever
from domainfit.retrieval.rerank import rerank
from domainfit.text.language import language_profile, language_slice_labels, shared_detector, wants_language_slices


def _qtexts(dataset: BeirDataset, qrels: Qrels) -> dict[str, str]:
    """Return the texts of the queries judged in ``qrels``."""
    return {qid: dataset.queries[qid].text for qid in qrels}


class SystemRunner(Benchmark):
    """Runs BM25, each dense model with its hybrids, and the optional reranker; keeps runs, metrics and timings.

    Inputs: those of `Benchmark` (the dataset, the evaluation and tuning qrels,
    the bench config, the cache folder, display labels per model and the
    ``[chunking]`` settings, which add the chunked systems and sweep; see
    `domainfit.evaluation.chunk_bench`).
    """

    def run_all(self) -> None:
        """BM25, then each dense model with its hybrids, then the optional reranker."""
        cfg = self.config
        queries = _qtexts(self.dataset, self.qrels)
        tune_queries = _qtexts(self.dataset, self.tune) if self.tune else {}
        start = time.perf_counter()
        bm25 = BM25Retriever(k1=cfg.bm25_k1, b=cfg.bm25_b, text=self.text)
        bm25.index(self.dataset.corpus)
        self.add(
            "bm25",
            "lexical",
            bm25.search(queries, cfg.depth),
            bm25.get_config_dict(),
            time.perf_counter() - start,
        )
        bm25_tune = bm25.search(tune_queries, cfg.depth) if tune_queries else {}
        for model in cfg.models:
            self._dense_and_hybrid(model, queries, tune_queries, self.runs["bm25"], bm25_tune)
        if cfg.reranker:
            self._rerank(queries)

    def _dense_and_hybrid(
        self,
        model: str,
        queries: dict[str, str],
        tune_queries: dict[str, str],
        bm25: Run,
        bm25_tune: Run,
    ) -> None:
        """Evaluate one bi-encoder and its RRF and convex hybrids with BM25."""
        cfg = self.config
        label = self.labels.get(model, short_name(model))
        suffix = f":{label}" if len(cfg.models) > 1 or model in self.labels else ""
        start = time.perf_counter()
        dense = DenseRetriever(
            model,
            cache_dir=self.cache / "embeddings",
            batch_size=cfg.batch_size,
            max_seq_length=cfg.max_seq_length,
            text=self.text,
            encode=cfg.encode,
            export_dir=self.cache / "encoders",
        )
        dense.index(self.dataset.corpus)
        run = dense.search(queries, cfg.depth)
        self.add(f"dense{suffix}", "dense", run, dense.get_config_dict(), time.perf_counter() - start)
        chunked = None
        if self.chunking_config is not None:
            from domainfit.evaluation.chunk_bench import add_chunked_systems

            chunked = add_chunked_systems(self, dense, queries, label, suffix)
        if cfg.similarity.any_enabled():
            from domainfit.evaluation.similarity import add_similarity_systems

            add_similarity_systems(self, dense, suffix, queries, run)
        if not cfg.hybrid:
            return
        self._hybrids(model, label, suffix, "", bm25, run, bm25_tune, lambda: dense.search(tune_queries, cfg.depth))
        if chunked is not None:
            searcher = chunked
            self._hybrids(
                model,
                f"{label} (chunked)",
                suffix,
                "-chunked",
                bm25,
                self.runs[f"dense-chunked{suffix}"],
                bm25_tune,
                lambda: searcher.search(tune_queries, cfg.depth),
            )

    def _hybrids(
        self,
        model: str,
        label: str,
        suffix: str,
        variant: str,
        bm25: Run,
        run: Run,
        bm25_tune: Run,
        dense_tune: Callable[[], Run],
    ) -> None:
        """Fuse BM25 with one dense run: RRF, and convex with its weight tuned on the tuning split.

        Inputs: the model, the tuning-record key (``label``), the system-name suffix, the
        variant (``""``, or ``"-chunked"`` for the chunked dense run), the BM25 and
        dense runs, the BM25 run of the tuning queries and a function searching them
        with the same dense system. Effects: ``hybrid-rrf<variant><suffix>`` and
        ``hybrid-convex<variant><suffix>`` added; ``tuning[label]``.
        """
        cfg = self.config
        start = time.perf_counter()
        extra = {"dense": f"dense{variant}{suffix}"} if variant else {}
        self.add(
            f"hybrid-rrf{variant}{suffix}",
            "hybrid",
            rrf([bm25, run], k=cfg.rrf_k, depth=cfg.depth),
            {"fusion": "rrf", "k": cfg.rrf_k, "model": model, **extra},
            time.perf_counter() - start,
        )
        if self.tune:
            tuned = tune_convex(bm25_tune, dense_tune(), self.tune, self.score, cfg.primary_metric)
            alpha = tuned.alpha
            self.tuning[label] = {
                "split": cfg.tune_split,
                "alpha": alpha,
                "metric": tuned.metric,
                "dev_scores": {str(a): s for a, s in tuned.scores.items()},
            }
        else:
            alpha = 0.5
            note = f"no '{cfg.tune_split}' split to tune the convex weight: used alpha=0.5"
            if note not in self.notes:
                self.notes.append(note)
            self.tuning[label] = {"split": None, "alpha": alpha}
        start = time.perf_counter()
        self.add(
            f"hybrid-convex{variant}{suffix}",
            "hybrid",
            convex(bm25, run, alpha, depth=cfg.depth),
            {"fusion": "convex", "alpha": alpha, "normalisation": "min-max", "model": model, **extra},
            time.perf_counter() - start,
        )

    def _rerank(self, queries: dict[str, str]) -> None:
        """Rerank the best first-stage run's top documents with the configured cross-encoder."""
        cfg = self.config
        assert cfg.reranker is not None
        first = max(self.systems, key=lambda s: s.metrics[cfg.primary_metric])
        start = time.perf_counter()
        model = load_cross_encoder(cfg.reranker)
        run = rerank(
            self.runs[first.name],
            queries,
            self.dataset.corpus,
            model,
            depth=cfg.rerank_depth,
            batch_size=cfg.batch_size,
            text=self.text,
        )
        self.add(
            "rerank",
            "rerank",
            run,
            {"model": cfg.reranker, "first_stage": first.name, "depth": cfg.rerank_depth},
            time.perf_counter() - start,
        )


def slices_of(bench: SystemRunner, metrics: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Return per-slice mean metrics for every system of a finished runner."""
    queries = {qid: bench.dataset.queries[qid] for qid in bench.qrels}
    labels = slice_labels(queries, bench.config.slice_fields)
    for qid, extra in bench.extra_labels.items():
        if qid in labels:
            labels[qid].update(extra)
    out = {}
    for name, run in bench.runs.items():
        rows = slice_table(per_query(bench.qrels, run, metrics), labels)
        out[name] = [asdict(row) for row in rows]
    return out


def profile_languages(bench: SystemRunner, max_examples: int = 10) -> dict[str, Any]:
    """Detect the languages of a runner's judged queries and documents; add the language slices when wanted.

    Input: a runner (before `slices_of`). Effects: when ``[text] language_slices``
    is ``on``, or ``auto`` and the data are multilingual, every judged query gets
    the ``language`` and ``cross_language`` slices (in ``bench.extra_labels``),
    and a note counts the cross-language queries. Output: the summary for
    ``metrics.json`` (languages of documents and queries, cross-language
    queries, detector settings, the text normalisation applied, whether the
    slices were added).
    """
    profile = language_profile(bench.dataset.corpus, bench.dataset.queries, bench.qrels, shared_detector(bench.text))
    added = wants_language_slices(profile, bench.text)
    if added:
        taken = {key for qid in bench.qrels for key in bench.dataset.queries[qid].metadata}  # metadata slices
        for qid, extra in language_slice_labels(profile, taken).items():
            bench.extra_labels.setdefault(qid, {}).update(extra)
        flagged = profile.cross_language_ids()
        if flagged:
            bench.notes.append(
                f"{len(flagged)} of {len(profile.query_language)} queries are cross-language (their language is not "
                f"that of their relevant documents), e.g. {', '.join(flagged[:3])}: see the cross_language slice"
            )
    return {**profile.summary(max_examples), "slices": added, "text_normalization": bench.text.normalization()}
