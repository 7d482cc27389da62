"""The ``synth`` stage: synthetic queries and click pairs, filtered, as training data for ``mine``.

Input: a BEIR folder (its corpus; its held-out qrels for the leakage checks),
a `SynthConfig`, optionally a click log and an LLM endpoint. Output, in
``<workspace>/synth/`` (built in a temporary folder swapped in on success):

* ``queries.jsonl``: one object per line, ``{"_id": "s000001", "text", "doc_id",
  "source": "title"|"heading"|"cloze"|"salient"|"llm"|"clicks", "positive_text":
  str|null, "negatives": [doc ids] (skip-above, clicks only), "weight": float
  (1.0; clicks: the click count)}``, plus ``"chunk"`` (id and offsets) when the
  positive is a chunk of a long document;
* ``summary.json``: counts per source generated / kept, removed per filter,
  click share, LLM tokens and cost, seconds, seeds, resolved config;
* ``manifest.json``: data hash, click-log hash, config; re-running with the same inputs is a no-op.

Queries are generated only from documents that are not positives of held-out
(non-train) queries (``exclude_eval_documents``), and none may equal or nearly
copy a held-out query. LLM replies are cached in ``<workspace>/cache/llm``.

With ``[chunking]`` on (a method other than ``none``; ``auto`` only when some
document exceeds the window of ``synth.model``), documents longer than the
window are generated from chunk by chunk (`domainfit.synth.chunked.ChunkedSources`):
``cloze`` and ``salient`` queries come from single chunks, deep ones included, and
their positive is that chunk; ``title`` and ``heading`` positives of a long
document become its first chunk / the first chunk of the section. The query's
``doc_id`` stays the parent document, so the leakage and eval-document checks
work per document. The round trip is per document too: BM25 reads whole
documents; the dense round trip ranks documents by their best chunk
(`domainfit.retrieval.chunked`, ``max``), so a query from a deep chunk passes
when its parent document comes back through any of its chunks.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.progress import progress_bar
from domainfit.core.types import Document
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES, dumps_line
from domainfit.stages.contract import TRAIN, Previous, Stage, StaleOutput, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, UserFile, Value
from domainfit.synth.base import QueryGenerator, SyntheticQuery
from domainfit.synth.config import SynthConfig
from domainfit.synth.filters import FILTERS, FilterSettings, apply_filters, counts_by_source
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.data.beir import BeirDataset
    from domainfit.data.config import ChunkingConfig
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.chunked import ChunkedSources, ChunkPlan
    from domainfit.synth.clicks import ClickStats
    from domainfit.synth.llm import LLMQueryGenerator

STAGE = "synth"
OUTPUTS = ("queries.jsonl", "summary.json", "config.json")


@dataclass
class SynthResult:
    """What ``synth`` produced; also the content of ``summary.json``."""

    n_documents: int
    n_source_documents: int
    excluded_eval_documents: int
    n_generated: int
    n_kept: int
    sources: dict[str, dict[str, Any]]
    filters: dict[str, int]
    click_share: dict[str, float] | None
    clicks: dict[str, int] | None
    llm: dict[str, Any] | None
    leakage: dict[str, Any]
    examples: dict[str, list[dict[str, Any]]]
    seeds: dict[str, Any]
    config: dict[str, Any]
    generators: dict[str, dict[str, Any]]
    seconds: dict[str, float]
    output_dir: str
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)
    chunking: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``summary.json``."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SynthResult:
        """Rebuild a result from ``summary.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"format_version {data.get('format_version')!r} is not 1")
        return cls(**{k: v for k, v in data.items() if k != "format_version"})


@dataclass
class _HeldOut:
    """The held-out side of the data: queries ``{id: (split, text)}`` and their positive documents."""

    queries: dict[str, tuple[str, str]]
    documents: frozenset[str]


def _held_out(dataset: BeirDataset, train_split: str) -> _HeldOut:
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
    return _HeldOut(queries, frozenset(documents))


def _source_documents(dataset: BeirDataset, held: _HeldOut, config: SynthConfig) -> list[Document]:
    """Return the documents generators may use: not held-out positives (by default), at most ``max_documents``."""
    docs = [d for d in dataset.corpus.values() if not (config.exclude_eval_documents and d.id in held.documents)]
    if config.max_documents is not None and config.max_documents < len(docs):
        keep = set(random.Random(f"{config.seed}\x00documents").sample(range(len(docs)), config.max_documents))
        docs = [d for n, d in enumerate(docs) if n in keep]
    return docs


def _offline(name: str, config: SynthConfig) -> QueryGenerator:
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


class _Generation:
    """Runs the configured sources in order and records what each produced and how long it took."""

    def __init__(
        self,
        config: SynthConfig,
        workspace: Workspace,
        corpus: list[Document],
        docs: list[Document],
        chunked: ChunkedSources | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.config, self.workspace, self.corpus, self.docs = config, workspace, corpus, docs
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
            self.llm = LLMQueryGenerator(self.config.llm, self.workspace.cache_dir / "llm", seed=self.config.seed)
            self.run(self.llm.with_text(self.text), fit=False)
        for name in self.config.generators:
            self.run(_offline(name, self.config).with_text(self.text), fit=True)


def _read_clicks(
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


def _dense_factory(
    config: SynthConfig, workspace: Workspace, loaded: DenseRetriever | None = None, text: TextConfig = DEFAULT_TEXT
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
            cache_dir=workspace.cache_dir / "embeddings",
            batch_size=config.batch_size,
            max_seq_length=config.max_seq_length,
            text=text,
        )

    return load


def _chunk_plan(
    config: SynthConfig,
    workspace: Workspace,
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
    dense = _dense_factory(config, workspace, text=text)()
    plan = plan_chunking(dense.model, chunking, dataset.corpus, document_prompt(dense))
    if plan.chunker is None:
        return plan, None, dense
    return plan, ChunkedSources(plan.chunker, dataset.corpus, plan.long_ids, text), dense


def _chunk_counts(
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


def _per_source(
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


def _click_share(kept: list[SyntheticQuery], labelled_pairs: int) -> dict[str, float]:
    """Share of click pairs among the kept synthetic queries and among all training pairs (with labelled ones)."""
    clicks = sum(q.source == "clicks" for q in kept)
    return {
        "of_synthetic": round(clicks / len(kept), 4) if kept else 0.0,
        "of_training_pairs": round(clicks / (len(kept) + labelled_pairs), 4) if kept or labelled_pairs else 0.0,
        "click_pairs": clicks,
        "labelled_pairs": labelled_pairs,
    }


def _notes(result: SynthResult, gen: _Generation, config: SynthConfig) -> list[str]:
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


class SynthStage(Stage[SynthResult]):
    """Generate and filter synthetic queries (and click pairs) from a BEIR folder.

    Inputs: the workspace, the BEIR folder, the ``[synth]`` settings, the largest
    JSONL record, the ``[chunking]`` settings (None or ``none``: documents are
    generated from whole) and the ``[text]`` settings every text is prepared
    under. Output: the `SynthResult`. Raises `InputError` on bad data or a bad
    click log, `UsageError` when no source is on and `LLMError` when the LLM
    endpoint fails; nothing is written in ``<workspace>/synth`` then (good LLM
    replies stay cached).
    """

    name: ClassVar[str] = "synth"
    command: ClassVar[str | None] = "synth"
    panel: ClassVar[str] = TRAIN
    report_config: ClassVar[tuple[str, ...]] = ("synth",)

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: SynthConfig,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        chunking: ChunkingConfig | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.max_line_bytes, self.chunking, self.text = config, max_line_bytes, chunking, text
        self._started = time.perf_counter()

    def check(self) -> None:
        """Check the sources and the click log; load the data, the held-out side and the click pairs."""
        from domainfit.data.beir import load_beir

        self._started = time.perf_counter()
        config = self.config
        assert self.data is not None
        if not self.data.is_dir():
            raise InputError(self.data, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
        if not config.sources():
            raise UsageError("synth has nothing to generate: list generators, set llm.base_url or clicks.path")
        clicks = config.clicks.path
        if clicks is not None and not Path(clicks).is_file():
            raise InputError(clicks, 0, "-", "click log not found")
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
        self.held = _held_out(self.dataset, config.train_split)
        self.clicks = _read_clicks(config, self.dataset, self.max_line_bytes, self.text)
        self.docs = _source_documents(self.dataset, self.held, config)

    def inputs(self) -> dict[str, Input]:
        """Declare the data, the click log, the settings and (for the dense round trip or chunking) the model."""
        from domainfit.synth.chunked import chunking_on

        config = self.config
        assert self.data is not None
        dense = config.roundtrip in ("dense", "either") or chunking_on(self.chunking)
        clicks = config.clicks.path
        inputs: dict[str, Input] = {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "clicks_sha256": UserFile(Path(clicks) if clicks is not None else None),
            "config": Section(config, mode="json"),
            "model": Model(config.model, digits=16) if dense else Value(None, of="model"),
            "domainfit_version": Value(__version__),
            "text_normalization": Text(self.text, only_normalization=True),
        }
        if self.chunking is not None and chunking_on(self.chunking):
            inputs["chunking"] = Section(self.chunking, mode="json")
        return inputs

    def compute(self, out: Path, previous: Previous | None) -> SynthResult:
        """Generate from every source, filter, and write the queries, the summary and the resolved config."""
        config, dataset, held, docs, text = self.config, self.dataset, self.held, self.docs, self.text
        clicks, click_stats, click_seconds = self.clicks
        plan, chunked, loaded = _chunk_plan(config, self.workspace, self.chunking, dataset, text)
        gen = _Generation(config, self.workspace, list(dataset.corpus.values()), docs, chunked, text)
        gen.all_sources(clicks, click_seconds)
        clock = time.perf_counter()
        filtered = apply_filters(
            gen.queries,
            dataset.corpus,
            filter_settings(config, text),
            held_out=held.queries,
            eval_documents=held.documents if config.exclude_eval_documents else frozenset(),
            dense=_dense_factory(config, self.workspace, loaded, text),
            chunker=plan.chunker if plan is not None else None,
        )
        seconds = {**{f"generate_{k}": v for k, v in gen.seconds.items()}, "filter": time.perf_counter() - clock}
        kept = filtered.kept
        labelled = sum(g > 0 for docs_ in dataset.qrels.get(config.train_split, {}).values() for g in docs_.values())
        result = SynthResult(
            n_documents=len(dataset.corpus),
            n_source_documents=len(docs),
            excluded_eval_documents=len(held.documents) if config.exclude_eval_documents else 0,
            n_generated=len(gen.queries),
            n_kept=len(kept),
            sources=_per_source(
                config.sources(), counts_by_source(gen.queries), counts_by_source(kept), filtered.removed
            ),
            filters={name: filtered.total(name) for name in FILTERS},
            click_share=_click_share(kept, labelled) if clicks is not None else None,
            clicks=click_stats.to_json() if click_stats is not None else None,
            llm=gen.llm.usage.to_json() if gen.llm is not None else None,
            leakage={"held_out_queries": len(held.queries), "dropped": filtered.total("leakage")},
            examples=filtered.examples,
            seeds={"seed": config.seed, "per_document_rng": "random.Random(f'{seed}\\x00{generator}\\x00{doc_id}')"},
            config=config.model_dump(mode="json"),
            generators=gen.configs,
            seconds={},
            output_dir=str(self.folder),
        )
        if plan is not None:
            result.chunking = _chunk_counts(plan, chunked, gen.queries, kept)
        result.notes = _notes(result, gen, config)
        seconds["total"] = time.perf_counter() - self._started
        result.seconds = {k: round(v, 3) for k, v in seconds.items()}
        width = max(6, len(str(len(kept))))
        lines = "".join(dumps_line(q.to_record(f"s{n:0{width}d}")) for n, q in enumerate(kept, start=1))
        atomic_write_text(out / "queries.jsonl", lines)
        atomic_write_json(out / "summary.json", result.to_json())
        atomic_write_json(out / "config.json", {"synth": result.config, "data": str(self.data)})
        return result

    def outputs(self, out: Path) -> list[str]:
        """List the queries, the summary and the resolved config."""
        return list(OUTPUTS)

    def load(self, folder: Path) -> SynthResult:
        """Read ``summary.json`` back (the queries must be there too)."""
        try:
            if not (folder / "queries.jsonl").is_file():
                raise StaleOutput("no queries.jsonl")
            return SynthResult.from_json(json.loads((folder / "summary.json").read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StaleOutput(str(exc)) from None


def run_synth(
    data: Path,
    workspace: Workspace,
    config: SynthConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    chunking: ChunkingConfig | None = None,
    text: TextConfig = DEFAULT_TEXT,
) -> SynthResult:
    """Run the synth stage over a BEIR folder and write its artifacts into the workspace (see `SynthStage`).

    ``force`` re-runs even when nothing changed. Output: the `SynthResult`.
    """
    stage = SynthStage(workspace, data, config, max_line_bytes=max_line_bytes, chunking=chunking, text=text)
    return run_stage(stage, force=force).result
