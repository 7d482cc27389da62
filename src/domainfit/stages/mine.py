"""The ``mine`` stage: hard negatives, false-negative filtering and a curriculum, as training datasets.

Input: a BEIR folder (train qrels), ``<workspace>/synth/queries.jsonl`` when the
``synth`` stage ran, and a `MineConfig`. Output, in ``<workspace>/mine/``:

* ``dataset/``: every example, a Hugging Face dataset (``save_to_disk``) with
  the columns ``anchor``, ``positive``, ``negative_1`` .. ``negative_n``;
* ``curriculum/<stage>/``: the same columns, one dataset per stage from easy to
  hard, rows easiest first; ``curriculum/stages.json`` their difficulty ranges;
* ``negatives.jsonl``: one line per dataset row: query, positive document,
  each negative's id, source, rank and scores, the row's difficulty and stage;
* ``summary.json`` (counts per source and per filter, leakage check, seeds,
  resolved config, LLM token usage, seconds), ``config.json`` and ``manifest.json``.

With ``"llm"`` in ``sources`` (and ``[mine.llm]`` ``base_url`` set), an LLM
writes plausible-but-wrong passages for every pair (`domainfit.mine.llm_negatives`;
replies cached in ``<workspace>/cache/llm/``); they go through the same
false-negative filters and are recorded with ``source: "llm"``, an
``llm:<sha1[:12]>`` id and their ``text``.

With ``[chunking]`` on (any method but ``none``; ``auto`` only when some document
exceeds the window of ``mine.model``), every document longer than the window is
chunked (`domainfit.synth.chunked`): a pair without its own positive text
(labelled pairs, LLM and click queries) whose document is long trains on the
document's chunk closest to the query under the base model, and a long negative
document becomes its chunk closest to the query, instead of a text the encoder
would silently truncate. ``summary.json`` → ``chunking`` counts what was replaced
(and records the settings, which the manifest's inputs include);
``negatives.jsonl`` names the chunks (``positive_chunk``, a negative's ``chunk``).

Everything is built in a temporary folder swapped in on success. Re-running
with unchanged data, synthetic queries, models and config is a no-op.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_json
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.mine.config import MineConfig
from domainfit.mine.outputs import _chunk_summary, _write_outputs
from domainfit.stages.contract import TRAIN, Previous, Stage, StaleOutput, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, Upstream, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.data.beir import BeirDataset
    from domainfit.data.config import ChunkingConfig
    from domainfit.mine.negatives import MiningResult
    from domainfit.synth.datasets import TrainingPair


@dataclass
class MineResult:
    """What ``mine`` produced; also the content of ``summary.json``."""

    n_pairs: dict[str, int]
    examples_by_query_source: dict[str, int]
    n_examples: int
    negatives_per_example: int
    dropped_pairs: int
    negatives_per_source: dict[str, int]
    sources: dict[str, dict[str, int]]
    filters: dict[str, int]
    curriculum: list[dict[str, Any]]
    leakage: dict[str, Any]
    seeds: dict[str, Any]
    config: dict[str, Any]
    mining: dict[str, Any]
    models: dict[str, Any]
    seconds: dict[str, float]
    output_dir: str
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)
    llm: dict[str, Any] | None = None
    chunking: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``summary.json``."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MineResult:
        """Rebuild a result from ``summary.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"format_version {data.get('format_version')!r} is not 1")
        return cls(**{k: v for k, v in data.items() if k != "format_version"})


def _training_pairs(
    root: Path, synth: Path | None, config: MineConfig, max_line_bytes: int, text: TextConfig
) -> tuple[BeirDataset, list[TrainingPair], dict[str, Any]]:
    """Load the data, build the pairs (train qrels + synthetic) and run the leakage check."""
    from domainfit.data.beir import load_beir
    from domainfit.synth.datasets import cap_synthetic, check_training_leakage, labelled_pairs, read_synthetic_queries

    dataset = load_beir(root, max_line_bytes=max_line_bytes, text=text)
    if config.train_split not in dataset.qrels and synth is None:
        available = ", ".join(sorted(dataset.qrels)) or "none"
        raise InputError(
            root / "qrels",
            0,
            "split",
            f"no qrels/{config.train_split}.tsv (available: {available}) and no synth/queries.jsonl: "
            "nothing to train on",
        )
    pairs = labelled_pairs(dataset, config.train_split)
    if synth is not None:
        pairs += read_synthetic_queries(synth, dataset.corpus, max_line_bytes)
    pairs, report = check_training_leakage(
        pairs,
        dataset,
        train_split=config.train_split,
        synth_path=synth or Path("synth/queries.jsonl"),
        threshold=config.leakage_overlap,
        labelled_near_duplicates=config.labelled_near_duplicates,
    )
    if not pairs:
        raise InputError(root / "qrels", 0, "split", "no training pairs (no judgement with grade > 0 to train on)")
    pairs, capped = cap_synthetic(pairs, config.synthetic_share, config.seed)
    return dataset, pairs, {**asdict(report), "synthetic_capped": capped}


def _generate_negatives(
    config: MineConfig, workspace: Workspace, pairs: list[TrainingPair], dataset: BeirDataset
) -> tuple[list[list[str]] | None, dict[str, Any] | None]:
    """Ask the LLM for the ``llm`` source's passages of every pair; return them and the token usage.

    Returns (None, None) when ``llm`` is not among the sources. Raises `LLMError`
    on a failed request or a malformed reply (good replies stay cached).
    """
    if "llm" not in config.sources:
        return None, None
    from domainfit.mine.llm_negatives import LLMNegativeGenerator

    generator = LLMNegativeGenerator(config.llm, workspace.cache_dir / "llm")
    requests = [(pair.query, pair.positive(dataset.corpus)) for pair in pairs]
    labels = [f"pair {n} (query {pair.query_id!r})" for n, pair in enumerate(pairs)]
    generated = generator.generate(requests, labels)
    usage = generator.usage.to_json()
    usage["passages"] = sum(len(texts) for texts in generated)
    usage["api_key_found"] = generator.client.api_key is not None
    return generated, usage


def _notes(mined: MiningResult, leakage: dict[str, Any], pairs: int) -> list[str]:
    """Human-readable remarks on what was dropped and why."""
    notes = []
    if leakage["dropped"]:
        first = leakage["dropped"][0]
        notes.append(
            f"dropped {len(leakage['dropped'])} labelled train queries that nearly copy a dev/test query "
            f"(e.g. {first['query_id']!r} ~ {first['held_out_split']} {first['held_out_id']!r})"
        )
    if leakage.get("synthetic_capped"):
        notes.append(
            f"left out {leakage['synthetic_capped']} synthetic pairs (seeded sample) so synthetic pairs stay within "
            "synthetic_share of the training pairs"
        )
    if mined.dropped:
        notes.append(
            f"{len(mined.dropped)} of {pairs} pairs got fewer than {mined.settings.negatives} negatives after "
            "filtering and were left out (widen range_max, enable more sources, or lower negatives)"
        )
    return notes


class MineStage(Stage[MineResult]):
    """Mine hard negatives for every training pair and build the curriculum and trainer datasets.

    Inputs: the workspace (its ``synth/queries.jsonl`` is read when present and
    ``config.synthetic`` is on; its embedding cache is used), the BEIR folder,
    the ``[mine]`` settings, the largest JSONL record, optionally an already
    loaded base model (instead of ``config.model``), the ``[chunking]`` settings
    (None or ``none``: long documents are used whole) and the ``[text]``
    settings. Output: the `MineResult`. Raises `InputError` on bad data or
    leakage and `UsageError` when no pair keeps enough negatives; nothing is
    written then.
    """

    name: ClassVar[str] = "mine"
    command: ClassVar[str | None] = "mine"
    panel: ClassVar[str] = TRAIN
    reads: ClassVar[tuple[str, ...]] = ("synth",)
    report_config: ClassVar[tuple[str, ...]] = ("mine",)

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        config: MineConfig,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        bi_encoder: SentenceTransformer | None = None,
        chunking: ChunkingConfig | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.config, self.max_line_bytes, self.bi_encoder = config, max_line_bytes, bi_encoder
        self.chunking, self.text = chunking, text
        self._outputs: list[str] = []

    def check(self) -> None:
        """Load the data and the synthetic queries, build the training pairs and check them for leakage."""
        self._started = time.perf_counter()
        assert self.data is not None
        if not self.data.is_dir():
            raise InputError(self.data, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
        found = self.workspace.stage_dir("synth") / "queries.jsonl"
        self.synth = found if self.config.synthetic and found.is_file() else None
        self.dataset, self.pairs, self.leakage = _training_pairs(
            self.data, self.synth, self.config, self.max_line_bytes, self.text
        )
        self._load_seconds = time.perf_counter() - self._started

    def inputs(self) -> dict[str, Input]:
        """Declare the data, synth's queries, the settings, the models and (when on) chunking."""
        from domainfit.core.models import model_fingerprint
        from domainfit.synth.chunked import chunking_on

        config = self.config
        assert self.data is not None
        encoder = self.bi_encoder
        inputs: dict[str, Input] = {
            "data": Value(str(self.data)),
            "data_sha256": DataFiles(self.data),
            "synthetic_queries": Value(str(self.synth) if self.synth else None),
            "synthetic_sha256": Upstream("synth", self.synth) if self.synth else Value(None, of="upstream"),
            "config": Section(config),
            "model": Value(model_fingerprint(encoder), of="model") if encoder is not None else Model(config.model, 16),
            "cross_encoder": Model(config.cross_encoder, 16),
            "domainfit_version": Value(__version__),
            "text_normalization": Text(self.text, only_normalization=True),
        }
        if self.chunking is not None and chunking_on(self.chunking):
            inputs["chunking"] = Section(self.chunking)
        return inputs

    def compute(self, out: Path, previous: Previous | None) -> MineResult:
        """Encode, mine, filter and order the examples; write the datasets, negatives, summary and config."""
        from domainfit.core.models import load_cross_encoder
        from domainfit.mine.curriculum import build_stages, difficulty
        from domainfit.mine.negatives import NegativeMiner
        from domainfit.retrieval.dense import DenseRetriever
        from domainfit.synth.chunked import chunk_pair_positives
        from domainfit.synth.datasets import excluded_documents

        config, dataset, pairs, leakage, text = self.config, self.dataset, self.pairs, self.leakage, self.text
        seconds = {"load": self._load_seconds}
        settings = config.mining_settings()
        clock = time.perf_counter()
        dense = DenseRetriever(
            self.bi_encoder if self.bi_encoder is not None else config.model,
            cache_dir=self.workspace.cache_dir / "embeddings",
            batch_size=config.batch_size,
            max_seq_length=config.max_seq_length,
            backend=config.search_backend,
            text=text,
            encode=config.encode,
        )
        seconds["load_model"] = time.perf_counter() - clock
        clock = time.perf_counter()
        doc_ids = list(dataset.corpus)
        doc_texts = [doc.full_text() for doc in dataset.corpus.values()]
        vectors = dense.encode_documents(doc_texts)
        seconds["encode_documents"] = time.perf_counter() - clock
        clock = time.perf_counter()
        pairs, chunks, positive_chunks, plan = chunk_pair_positives(dense, self.chunking, dataset.corpus, pairs)
        if plan is not None:
            seconds["chunk"] = time.perf_counter() - clock
            clock = time.perf_counter()
        generated, llm_usage = _generate_negatives(config, self.workspace, pairs, dataset)
        if generated is not None:
            seconds["generate_negatives"] = time.perf_counter() - clock
            clock = time.perf_counter()
        cross = load_cross_encoder(config.cross_encoder) if config.cross_encoder else None
        miner = NegativeMiner(
            doc_ids, doc_texts, vectors, dense, settings, cross_encoder=cross, chunks=chunks, text=text
        )
        mined = miner.mine(pairs, excluded_documents(pairs, dataset), generated)
        seconds["mine"] = time.perf_counter() - clock
        if not mined.examples:
            raise UsageError(
                f"no training pair kept {settings.negatives} negatives after filtering; "
                "widen range_max, enable more sources or lower negatives"
            )
        clock = time.perf_counter()
        difficulties = [difficulty(ex.positive_score, [x.score for x in ex.negatives]) for ex in mined.examples]
        stages = build_stages(difficulties, config.stages, config.stage_shares)
        kept = [pairs[ex.pair] for ex in mined.examples]
        result = MineResult(
            n_pairs={
                "labelled": sum(p.origin == "labelled" for p in pairs),
                "synthetic": sum(p.origin == "synthetic" for p in pairs),
            },
            examples_by_query_source={s: sum(p.source == s for p in kept) for s in sorted({p.source for p in kept})},
            n_examples=len(mined.examples),
            negatives_per_example=settings.negatives,
            dropped_pairs=len(mined.dropped),
            negatives_per_source=mined.negatives_per_source(),
            sources={name: asdict(stats) for name, stats in mined.stats.items()},
            filters={**mined.filter_totals(), "cross_encoder_scored": mined.cross_encoder_scored},
            curriculum=[s.summary() for s in stages],
            leakage=leakage,
            seeds={"seed": config.seed, "per_pair_rng": "numpy.random.default_rng([seed, pair_index])"},
            config=config.model_dump(),
            mining=settings.get_config_dict(),
            models={"bi_encoder": dense.get_config_dict(), "cross_encoder": config.cross_encoder},
            seconds={},
            output_dir=str(self.folder),
            notes=_notes(mined, leakage, len(pairs)),
            llm=llm_usage,
            chunking=_chunk_summary(plan, chunks, mined, positive_chunks) if plan is not None else None,
        )
        self._outputs = _write_outputs(
            out, dataset, pairs, mined, stages, difficulties, positive_chunks if plan is not None else None
        )
        atomic_write_json(out / "config.json", {"mine": config.model_dump(), "data": str(self.data)})
        seconds["write"] = time.perf_counter() - clock
        seconds["total"] = time.perf_counter() - self._started
        result.seconds = {k: round(v, 3) for k, v in seconds.items()}
        atomic_write_json(out / "summary.json", result.to_json())
        return result

    def outputs(self, out: Path) -> list[str]:
        """List the files the datasets were written as, the config and the summary."""
        return [*self._outputs, "config.json", "summary.json"]

    def load(self, folder: Path) -> MineResult:
        """Read ``summary.json`` back (the dataset must be there too)."""
        if not (folder / "dataset").is_dir():
            raise StaleOutput("no dataset")
        return read_result(folder / "summary.json", MineResult.from_json)


def run_mine(
    data: Path,
    workspace: Workspace,
    config: MineConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    bi_encoder: SentenceTransformer | None = None,
    chunking: ChunkingConfig | None = None,
    text: TextConfig = DEFAULT_TEXT,
) -> MineResult:
    """Run the mine stage over a BEIR folder and write its artifacts into the workspace (see `MineStage`).

    ``force`` re-runs even when nothing changed. Output: the `MineResult`.
    """
    stage = MineStage(workspace, data, config, max_line_bytes=max_line_bytes, bi_encoder=bi_encoder,
                      chunking=chunking, text=text)  # fmt: skip
    return run_stage(stage, force=force).result
