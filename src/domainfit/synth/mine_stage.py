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
writes plausible-but-wrong passages for every pair (`domainfit.synth.llm_negatives`;
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
This module is imported by `domainfit.config`, so its top-level imports stay light.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domainfit import __version__
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.errors import InputError, UsageError
from domainfit.models import DEFAULT_MODEL
from domainfit.synth.config import LLMNegativesConfig
from domainfit.synth.mine_outputs import _chunk_summary, _write_outputs
from domainfit.workspace import Workspace, atomic_write_json, sha256_file, staged_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.data.beir import BeirDataset
    from domainfit.data.chunking import ChunkingConfig
    from domainfit.synth.datasets import TrainingPair
    from domainfit.synth.negatives import MiningResult, MiningSettings

STAGE = "mine"
Source = Literal["clicks", "llm", "dense", "bm25", "random"]


def _default_sources() -> list[Source]:
    """Return the sources mined by default (clicks only contribute where synthetic queries carry them)."""
    return ["dense", "bm25", "random", "clicks"]


class MineConfig(BaseModel):
    """Settings of the ``mine`` stage (``[mine]`` in ``domainfit.toml``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field(DEFAULT_MODEL, description="base bi-encoder: dense source, similarities, difficulty")
    train_split: str = Field("train", description="qrels split whose judgements become training pairs")
    synthetic: bool = Field(True, description="also train on <workspace>/synth/queries.jsonl when it exists")
    synthetic_share: float | None = Field(
        None, gt=0, le=1, description="at most this share of pairs synthetic when labelled pairs exist (None: all)"
    )
    sources: list[Source] = Field(default_factory=_default_sources, min_length=1, description="negative sources")
    negatives: int = Field(4, ge=1, le=64, description="negatives per example (columns negative_1..n)")
    per_source: dict[Source, int] | None = Field(None, description="negatives per source; must sum to negatives")
    range_min: int = Field(10, ge=0, description="first rank (0-based) of the dense/BM25 candidate window")
    range_max: int = Field(100, ge=1, le=10000, description="end (exclusive) of the candidate window")
    sampling: Literal["top", "random"] = Field("random", description="best ranks of the window, or a random sample")
    absolute_margin: float | None = Field(None, ge=0, description="drop if similarity + margin > positive's")
    relative_margin: float | None = Field(0.05, ge=0, le=1, description="drop if similarity > pos - |pos| * margin")
    drop_duplicates: bool = Field(True, description="drop documents whose normalised text equals the positive's")
    cross_encoder: str | None = Field(None, description="cross-encoder name or path for the false-negative check")
    ce_absolute_margin: float | None = Field(None, ge=0)
    ce_relative_margin: float | None = Field(0.05, ge=0, le=1)
    stages: list[str] = Field(default_factory=lambda: ["easy", "medium", "hard"], min_length=1)
    stage_shares: list[float] | None = Field(None, description="share of examples per stage (equal by default)")
    seed: int = 13
    batch_size: int = Field(32, ge=1, description="encoding batch size")
    max_seq_length: int | None = Field(256, ge=8)
    query_batch: int = Field(256, ge=1, description="queries searched per step (memory bound)")
    search_backend: Literal["auto", "numpy", "faiss"] = "auto"
    random_pool: int = Field(32, ge=1, description="documents the random source draws per pair")
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    leakage_overlap: float = Field(0.8, gt=0, le=1, description="token Jaccard at which queries are near-duplicates")
    labelled_near_duplicates: Literal["drop", "fail"] = Field(
        "drop", description="labelled train queries that nearly copy a dev/test query: drop them, or fail"
    )
    near_duplicate_overlap: float = Field(
        0.8, gt=0, le=1, description="token Jaccard with the positive at which an LLM passage is a near copy"
    )
    llm: LLMNegativesConfig = Field(
        default_factory=LLMNegativesConfig, description="endpoint of the 'llm' source (needs base_url)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MineConfig:
        """Check the window, per-source counts and stages against each other."""
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources repeat a name: {self.sources}")
        if "llm" in self.sources and self.llm.base_url is None:
            raise ValueError(
                "sources include 'llm' but no LLM endpoint is configured: set mine.llm.base_url "
                "(e.g. [mine.llm] base_url = \"http://127.0.0.1:8000/v1\") or remove 'llm' from sources"
            )
        if self.per_source is not None:
            extra = sorted(set(self.per_source) - set(self.sources))
            if extra:
                raise ValueError(f"per_source names sources that are not enabled: {extra}")
            if sum(self.per_source.values()) != self.negatives or min(self.per_source.values()) < 0:
                raise ValueError(f"per_source counts must be >= 0 and sum to negatives ({self.negatives})")
        bad = [s for s in self.stages if not s or s in (".", "..") or "/" in s or "\\" in s]
        if bad or len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stage names must be unique folder names, got {self.stages}")
        if self.stage_shares is not None and (
            len(self.stage_shares) != len(self.stages) or min(self.stage_shares) < 0 or sum(self.stage_shares) <= 0
        ):
            raise ValueError("stage_shares needs one non-negative share per stage, not all zero")
        return self

    def mining_settings(self) -> MiningSettings:
        """Return the miner's settings for this config."""
        from domainfit.synth.negatives import MiningSettings

        return MiningSettings(
            sources=tuple(self.sources),
            negatives=self.negatives,
            per_source={str(k): v for k, v in self.per_source.items()} if self.per_source is not None else None,
            range_min=self.range_min,
            range_max=self.range_max,
            sampling=self.sampling,
            absolute_margin=self.absolute_margin,
            relative_margin=self.relative_margin,
            drop_duplicates=self.drop_duplicates,
            near_duplicate_overlap=self.near_duplicate_overlap,
            ce_absolute_margin=self.ce_absolute_margin,
            ce_relative_margin=self.ce_relative_margin,
            seed=self.seed,
            query_batch=self.query_batch,
            search_backend=self.search_backend,
            random_pool=self.random_pool,
            ce_batch_size=self.batch_size,
            bm25_k1=self.bm25_k1,
            bm25_b=self.bm25_b,
        )


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
        """Rebuild a result from ``summary.json``."""
        return cls(**{k: v for k, v in data.items() if k != "format_version"})


def _fingerprint(files: list[Path]) -> str:
    """Hash the names and contents of the files that exist."""
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def _model_id(name: str) -> str:
    """Content fingerprint of a model folder (resolved offline first)."""
    from domainfit.models import folder_fingerprint, resolve_model

    return folder_fingerprint(resolve_model(name).path)[:16]


def _inputs(
    root: Path,
    synth: Path | None,
    config: MineConfig,
    bi_encoder: SentenceTransformer | None,
    chunking: ChunkingConfig | None = None,
) -> dict[str, Any]:
    """Everything the stage's output depends on (compared with the last manifest; ``chunking`` only when on)."""
    from domainfit.models import model_fingerprint
    from domainfit.synth.chunked import chunking_on

    data_files = [root / "corpus.jsonl", root / "queries.jsonl", *sorted((root / "qrels").glob("*.tsv"))]
    inputs = {
        "data": str(root),
        "data_sha256": _fingerprint(data_files),
        "synthetic_queries": str(synth) if synth else None,
        "synthetic_sha256": sha256_file(synth) if synth else None,
        "config": config.model_dump(),
        "model": model_fingerprint(bi_encoder) if bi_encoder is not None else _model_id(config.model),
        "cross_encoder": _model_id(config.cross_encoder) if config.cross_encoder else None,
        "domainfit_version": __version__,
    }
    if chunking is not None and chunking_on(chunking):
        inputs["chunking"] = chunking.model_dump()
    return inputs


def _up_to_date(out_dir: Path, inputs: dict[str, Any]) -> MineResult | None:
    """Return the previous result when the last run had exactly these inputs and its outputs exist."""
    manifest, summary = out_dir / "manifest.json", out_dir / "summary.json"
    if not (manifest.is_file() and summary.is_file() and (out_dir / "dataset").is_dir()):
        return None
    if json.loads(manifest.read_text()).get("inputs") != inputs:
        return None
    result = MineResult.from_json(json.loads(summary.read_text()))
    result.up_to_date = True
    return result


def _training_pairs(
    root: Path, synth: Path | None, config: MineConfig, max_line_bytes: int
) -> tuple[BeirDataset, list[TrainingPair], dict[str, Any]]:
    """Load the data, build the pairs (train qrels + synthetic) and run the leakage check."""
    from domainfit.data.beir import load_beir
    from domainfit.synth.datasets import cap_synthetic, check_training_leakage, labelled_pairs, read_synthetic_queries

    dataset = load_beir(root, max_line_bytes=max_line_bytes)
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
    from domainfit.synth.llm_negatives import LLMNegativeGenerator

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


def run_mine(
    data: Path,
    workspace: Workspace,
    config: MineConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
    bi_encoder: SentenceTransformer | None = None,
    chunking: ChunkingConfig | None = None,
) -> MineResult:
    """Run the mine stage over a BEIR folder and write its artifacts into the workspace.

    Inputs: the BEIR folder, the workspace (its ``synth/queries.jsonl`` is read
    when present and ``config.synthetic`` is on; its embedding cache is used),
    the config, ``force`` to re-run when nothing changed, the largest JSONL
    record, optionally an already loaded base model (instead of
    ``config.model``) and the ``[chunking]`` settings (None or ``none``: long
    documents are used whole). Output: the `MineResult`. Raises `InputError` on bad
    data or leakage and `UsageError` when no pair keeps enough negatives;
    nothing is written then.
    """
    from domainfit.models import load_cross_encoder
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.chunked import chunk_pair_positives
    from domainfit.synth.curriculum import build_stages, difficulty
    from domainfit.synth.datasets import excluded_documents
    from domainfit.synth.negatives import NegativeMiner

    started = time.perf_counter()
    root = Path(data).expanduser().resolve()
    workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    if not root.is_dir():
        raise InputError(root, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
    synth_file = workspace.root / "synth" / "queries.jsonl"
    synth = synth_file if config.synthetic and synth_file.is_file() else None
    out_dir = workspace.stage_dir(STAGE)
    inputs = _inputs(root, synth, config, bi_encoder, chunking)
    dataset, pairs, leakage = _training_pairs(root, synth, config, max_line_bytes)
    seconds = {"load": time.perf_counter() - started}
    settings = config.mining_settings()
    with workspace.lock():  # the up-to-date check runs under the lock, so two runs cannot race
        if not force and (previous := _up_to_date(out_dir, inputs)) is not None:
            return previous
        clock = time.perf_counter()
        dense = DenseRetriever(
            bi_encoder if bi_encoder is not None else config.model,
            cache_dir=workspace.cache_dir / "embeddings",
            batch_size=config.batch_size,
            max_seq_length=config.max_seq_length,
            backend=config.search_backend,
        )
        seconds["load_model"] = time.perf_counter() - clock
        clock = time.perf_counter()
        doc_ids = list(dataset.corpus)
        doc_texts = [doc.full_text() for doc in dataset.corpus.values()]
        vectors = dense.encode_documents(doc_texts)
        seconds["encode_documents"] = time.perf_counter() - clock
        clock = time.perf_counter()
        pairs, chunks, positive_chunks, plan = chunk_pair_positives(dense, chunking, dataset.corpus, pairs)
        if plan is not None:
            seconds["chunk"] = time.perf_counter() - clock
            clock = time.perf_counter()
        generated, llm_usage = _generate_negatives(config, workspace, pairs, dataset)
        if generated is not None:
            seconds["generate_negatives"] = time.perf_counter() - clock
            clock = time.perf_counter()
        cross = load_cross_encoder(config.cross_encoder) if config.cross_encoder else None
        miner = NegativeMiner(doc_ids, doc_texts, vectors, dense, settings, cross_encoder=cross, chunks=chunks)
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
            output_dir=str(out_dir),
            notes=_notes(mined, leakage, len(pairs)),
            llm=llm_usage,
            chunking=_chunk_summary(plan, chunks, mined, positive_chunks) if plan is not None else None,
        )
        with staged_dir(out_dir) as tmp:
            outputs = _write_outputs(
                tmp, dataset, pairs, mined, stages, difficulties, positive_chunks if plan is not None else None
            )
            atomic_write_json(tmp / "config.json", {"mine": config.model_dump(), "data": str(root)})
            seconds["write"] = time.perf_counter() - clock
            seconds["total"] = time.perf_counter() - started
            result.seconds = {k: round(v, 3) for k, v in seconds.items()}
            atomic_write_json(tmp / "summary.json", result.to_json())
            workspace.write_manifest(tmp, STAGE, inputs, [*outputs, "config.json", "summary.json"])
    return result
