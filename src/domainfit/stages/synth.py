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

import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from domainfit import __version__
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_json, atomic_write_text
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES, dumps_line
from domainfit.stages.contract import TRAIN, Previous, Stage, StaleOutput, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, UserFile, Value
from domainfit.synth.config import SynthConfig
from domainfit.synth.filters import FILTERS, apply_filters, counts_by_source
from domainfit.synth.generation import (
    Generation,
    chunk_counts,
    chunk_plan,
    click_share,
    dense_factory,
    filter_settings,
    generation_notes,
    held_out,
    per_source,
    read_clicks,
    source_documents,
)
from domainfit.synth.results import SynthResult
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.data.config import ChunkingConfig

STAGE = "synth"
OUTPUTS = ("queries.jsonl", "summary.json", "config.json")


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
        self.held = held_out(self.dataset, config.train_split)
        self.clicks = read_clicks(config, self.dataset, self.max_line_bytes, self.text)
        self.docs = source_documents(self.dataset, self.held, config)

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
        plan, chunked, loaded = chunk_plan(config, self.workspace.cache_dir, self.chunking, dataset, text)
        gen = Generation(config, self.workspace.cache_dir, list(dataset.corpus.values()), docs, chunked, text)
        gen.all_sources(clicks, click_seconds)
        clock = time.perf_counter()
        filtered = apply_filters(
            gen.queries,
            dataset.corpus,
            filter_settings(config, text),
            held_out=held.queries,
            eval_documents=held.documents if config.exclude_eval_documents else frozenset(),
            dense=dense_factory(config, self.workspace.cache_dir, loaded, text),
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
            sources=per_source(
                config.sources(), counts_by_source(gen.queries), counts_by_source(kept), filtered.removed
            ),
            filters={name: filtered.total(name) for name in FILTERS},
            click_share=click_share(kept, labelled) if clicks is not None else None,
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
            result.chunking = chunk_counts(plan, chunked, gen.queries, kept)
        result.notes = generation_notes(result, gen, config)
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
        if not (folder / "queries.jsonl").is_file():
            raise StaleOutput("no queries.jsonl")
        return read_result(folder / "summary.json", SynthResult.from_json)


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
