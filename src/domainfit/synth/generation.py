"""One synth run's work: the held-out side of the data, the sources run in order, the filters' settings and counts.

The ``synth`` stage (`domainfit.stages.synth`) calls these in turn: `held_out`
and `source_documents` decide what generators may read; `Generation` runs
the click log, the LLM and the offline generators (with chunking, per chunk of
a long document); `filter_settings` and `dense_factory` configure the filters;
`per_source`, `click_share`, `chunk_counts` and `generation_notes` fill the summary.
Caches (LLM replies, embeddings) live under the ``cache_dir`` given.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.progress import progress_bar
from domainfit.core.types import Document
from domainfit.synth.base import QueryGenerator, SyntheticQuery
from domainfit.synth.config import SynthConfig
from domainfit.synth.filters import FILTERS, FilterSettings, counts_by_source
from domainfit.synth.results import SynthResult
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.data.beir import BeirDataset
    from domainfit.data.config import ChunkingConfig
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.chunked import ChunkedSources, ChunkPlan
    from domainfit.synth.clicks import ClickStats
    from domainfit.synth.llm import LLMQueryGenerator


@dataclass
class HeldOut:
    """The held-out side of the data: queries ``{id: (split, text)}`` and their positive documents."""

    queries: dict[str, tuple[str, str]]
    documents: frozenset[str]


def held_out(dataset: BeirDataset, train_split: str) -> HeldOut:
    """Every qrels split but the train split is held out: its queries and positives must not be trained on."""
    queries: dict[str, tuple[str, str]] = {}
    documents: set[str] = set()
    for split, qrels in sorted(dataset.qrels.items()):
        if split == train_split:
            continue
        for qid, docs in qrels.items():
            query = dataset.queries.get(qid)
            queries.setdefault(qid, (split, query.text if query else ""))
            documents.update(d for d, grade in docs.items() if grade > 0)
    return HeldOut(queries, frozenset(documents))


def source_documents(dataset: BeirDataset, held: HeldOut, config: SynthConfig) -> list[Document]:
    """Return the documents generators may use: not held-out positives (by default), at most ``max_documents``."""
    docs = [d for d in dataset.corpus.values() if not (config.exclude_eval_documents and d.id in held.documents)]
    if config.max_documents is not None and config.max_documents < len(docs):
        keep = set(random.Random(f"{config.seed}\x00documents").sample(range(len(docs)), config.max_documents))
        docs = [d for n, d in enumerate(docs) if n in keep]
    return docs


def offline_generator(name: str, config: SynthConfig) -> QueryGenerator:
    """Build one offline generator from the config."""
    from domainfit.synth.offline import ClozeGenerator, HeadingGenerator, SalientGenerator, TitleGenerator

    if name == "title":
        return TitleGenerator()
    if name == "heading":
        return HeadingGenerator(config.heading_max_per_document, config.heading_min_section_words)
    if name == "cloze":
        return ClozeGenerator(config.cloze_per_document, config.cloze_min_words, config.cloze_max_words, config.seed)
    if name == "salient":
        return SalientGenerator(
            config.salient_per_document, config.salient_min_words, config.salient_max_words, seed=config.seed
        )
    raise ValueError(f"unknown generator {name!r}")


class Generation:
    """Runs the configured sources in order and records what each produced and how long it took."""

    def __init__(
        self,
        config: SynthConfig,
        cache_dir: Path,
        corpus: list[Document],
        docs: list[Document],
        chunked: ChunkedSources | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.config, self.cache_dir, self.corpus, self.docs = config, cache_dir, corpus, docs
        self.text = text
        self.chunked = chunked
        self.queries: list[SyntheticQuery] = []
        self.seconds: dict[str, float] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.llm: LLMQueryGenerator | None = None

    def run(self, generator: QueryGenerator, fit: bool) -> None:
        """Fit (when asked) and run one generator over the source documents, with a progress bar.

        With chunking, per-chunk generators fit on and read the corpus with long
        documents replaced by their chunks; every query is then mapped back to its
        parent document (`ChunkedSources.remap`).
        """
        start = time.perf_counter()
        per_chunk = self.chunked is not None and generator.name in self.chunked.PER_CHUNK
        corpus = self.chunked.units(self.corpus) if per_chunk and self.chunked is not None else self.corpus
        docs = self.chunked.units(self.docs) if per_chunk and self.chunked is not None else self.docs
        if fit:
            generator.fit(corpus)
        with progress_bar(f"generating ({generator.name})", len(docs)) as advance:
            made = generator.generate(docs, advance)
        if self.chunked is not None:
            self.chunked.remap(made, generator.name)
        self.queries.extend(made)
        self.seconds[generator.name] = round(time.perf_counter() - start, 3)
        self.configs[generator.name] = generator.get_config_dict()

    def all_sources(self, clicks: list[SyntheticQuery] | None, click_seconds: float) -> None:
        """Clicks first (real behaviour wins duplicate ties), then the LLM, then the offline generators."""
        from domainfit.synth.llm import LLMQueryGenerator

        if clicks is not None:
            self.queries.extend(clicks)
            self.seconds["clicks"] = round(click_seconds, 3)
            self.configs["clicks"] = self.config.clicks.model_dump(mode="json")
        if self.config.llm.base_url is not None:
            self.llm = LLMQueryGenerator(self.config.llm, self.cache_dir / "llm", seed=self.config.seed)
            self.run(self.llm.with_text(self.text), fit=False)
        for name in self.config.generators:
            self.run(offline_generator(name, self.config).with_text(self.text), fit=True)


def read_clicks(
    config: SynthConfig, dataset: BeirDataset, max_line_bytes: int, text: TextConfig = DEFAULT_TEXT
) -> tuple[list[SyntheticQuery] | None, ClickStats | None, float]:
    """Read and turn the click log into pairs (None when no log is configured)."""
    from domainfit.synth.clicks import click_pairs, read_click_log

    if config.clicks.path is None:
        return None, None, 0.0
    start = time.perf_counter()
    impressions = read_click_log(Path(config.clicks.path), dataset.corpus, max_line_bytes)
    c = config.clicks
    pairs, stats = click_pairs(
        impressions,
        min_clicks=c.min_clicks,
        min_dwell=c.min_dwell,
        skip_above=c.skip_above,
        max_negatives=c.max_negatives,
        text=text,
    )
    return pairs, stats, time.perf_counter() - start


def filter_settings(config: SynthConfig, text: TextConfig = DEFAULT_TEXT) -> FilterSettings:
    """Return the filter thresholds of a `SynthConfig`, with the ``[text]`` settings texts are prepared under."""
    return FilterSettings(
        min_chars=config.min_chars,
        max_chars=config.max_chars,
        min_words=config.min_words,
        max_words=config.max_words,
        near_duplicate_overlap=config.near_duplicate_overlap,
        leakage_overlap=config.leakage_overlap,
        roundtrip=config.roundtrip,
        roundtrip_k=config.roundtrip_k,
        roundtrip_exempt=tuple(config.roundtrip_exempt),
        bm25_k1=config.bm25_k1,
        bm25_b=config.bm25_b,
        text=text,
    )


def dense_factory(
    config: SynthConfig, cache_dir: Path, loaded: DenseRetriever | None = None, text: TextConfig = DEFAULT_TEXT
) -> Callable[[], DenseRetriever]:
    """Return a function that loads the base model for the dense round trip (with the embedding cache).

    ``loaded``: a retriever of the base model already loaded (for chunking), returned as is.
    """

    def load() -> DenseRetriever:
        from domainfit.retrieval.dense import DenseRetriever

        if loaded is not None:
            return loaded
        return DenseRetriever(
            config.model,
            cache_dir=cache_dir / "embeddings",
            batch_size=config.batch_size,
            max_seq_length=config.max_seq_length,
            text=text,
        )

    return load


def chunk_plan(
    config: SynthConfig,
    cache_dir: Path,
    chunking: ChunkingConfig | None,
    dataset: BeirDataset,
    text: TextConfig = DEFAULT_TEXT,
) -> tuple[ChunkPlan | None, ChunkedSources | None, DenseRetriever | None]:
    """Resolve ``[chunking]`` with the base model's tokenizer and window; chunk the long documents.

    Output: the plan, the chunked generation sources (None when chunking is off or
    ``auto`` finds no long document) and the loaded base model (None when off).
    """
    from domainfit.synth.chunked import ChunkedSources, chunking_on, document_prompt, plan_chunking

    if chunking is None or not chunking_on(chunking):
        return None, None, None
    dense = dense_factory(config, cache_dir, text=text)()
    plan = plan_chunking(dense.model, chunking, dataset.corpus, document_prompt(dense))
    if plan.chunker is None:
        return plan, None, dense
    return plan, ChunkedSources(plan.chunker, dataset.corpus, plan.long_ids, text), dense


def chunk_counts(
    plan: ChunkPlan, chunked: ChunkedSources | None, generated: list[SyntheticQuery], kept: list[SyntheticQuery]
) -> dict[str, Any]:
    """Return the chunking record of ``summary.json``: settings, long documents, chunk-positive queries per source."""

    def by_source(queries: list[SyntheticQuery]) -> dict[str, int]:
        return counts_by_source([q for q in queries if "chunk" in q.metadata])

    window = plan.chunker.window if plan.chunker is not None else 0
    plan.counts = {
        "chunks": chunked.n_chunks if chunked is not None else 0,
        "chunk_positives": {"generated": by_source(generated), "kept": by_source(kept)},
        "kept_past_window": sum(1 for q in kept if q.metadata.get("chunk", {}).get("token_start", 0) >= window > 0),
        "roundtrip": "per document: bm25 over whole documents; dense ranks documents by their best chunk (max)",
    }
    return plan.summary()


def per_source(
    sources: list[str], generated: dict[str, int], kept: dict[str, int], removed: dict[str, dict[str, int]]
) -> dict[str, dict[str, Any]]:
    """Per source: generated, kept and removed by each filter."""
    return {
        name: {
            "generated": generated.get(name, 0),
            "kept": kept.get(name, 0),
            "removed": {f: removed.get(f, {}).get(name, 0) for f in FILTERS},
        }
        for name in sources
    }


def click_share(kept: list[SyntheticQuery], labelled_pairs: int) -> dict[str, float]:
    """Share of click pairs among the kept synthetic queries and among all training pairs (with labelled ones)."""
    clicks = sum(q.source == "clicks" for q in kept)
    return {
        "of_synthetic": round(clicks / len(kept), 4) if kept else 0.0,
        "of_training_pairs": round(clicks / (len(kept) + labelled_pairs), 4) if kept or labelled_pairs else 0.0,
        "click_pairs": clicks,
        "labelled_pairs": labelled_pairs,
    }


def generation_notes(result: SynthResult, gen: Generation, config: SynthConfig) -> list[str]:
    """Human-readable remarks on what was skipped or dropped."""
    notes = []
    if not result.leakage["held_out_queries"]:
        notes.append("no held-out qrels (only the train split or none): leakage checks had nothing to compare with")
    if gen.llm is not None and not gen.llm.get_config_dict()["api_key_found"] and gen.llm.usage.requests:
        notes.append(f"no API key in ${config.llm.api_key_env}: requests were sent without Authorization")
    if result.n_generated and result.filters.get("roundtrip", 0) > 0.5 * result.n_generated:
        notes.append("the round trip removed over half the queries; raise roundtrip_k or use roundtrip = 'either'")
    if result.n_kept == 0:
        notes.append("no query survived the filters: nothing to train on from this stage")
    return notes
