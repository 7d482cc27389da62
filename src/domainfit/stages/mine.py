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
This module is imported by `domainfit.config`, so its top-level imports stay light.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit import __version__
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_json, sha256_file, staged_dir
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.mine.config import MineConfig
from domainfit.mine.outputs import _chunk_summary, _write_outputs
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.data.beir import BeirDataset
    from domainfit.data.config import ChunkingConfig
    from domainfit.mine.negatives import MiningResult
    from domainfit.synth.datasets import TrainingPair

STAGE = "mine"


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
    from domainfit.core.models import folder_fingerprint, resolve_model

    return folder_fingerprint(resolve_model(name).path)[:16]


def _inputs(
    root: Path,
    synth: Path | None,
    config: MineConfig,
    bi_encoder: SentenceTransformer | None,
    chunking: ChunkingConfig | None = None,
) -> dict[str, Any]:
    """Everything the stage's output depends on (compared with the last manifest; ``chunking`` only when on)."""
    from domainfit.core.models import model_fingerprint
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
    """Run the mine stage over a BEIR folder and write its artifacts into the workspace.

    Inputs: the BEIR folder, the workspace (its ``synth/queries.jsonl`` is read
    when present and ``config.synthetic`` is on; its embedding cache is used),
    the config, ``force`` to re-run when nothing changed, the largest JSONL
    record, optionally an already loaded base model (instead of
    ``config.model``), the ``[chunking]`` settings (None or ``none``: long
    documents are used whole) and the ``[text]`` settings. Output: the `MineResult`. Raises `InputError` on bad
    data or leakage and `UsageError` when no pair keeps enough negatives;
    nothing is written then.
    """
    from domainfit.core.models import load_cross_encoder
    from domainfit.mine.curriculum import build_stages, difficulty
    from domainfit.mine.negatives import NegativeMiner
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.chunked import chunk_pair_positives
    from domainfit.synth.datasets import excluded_documents

    started = time.perf_counter()
    root = Path(data).expanduser().resolve()
    workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    if not root.is_dir():
        raise InputError(root, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
    synth_file = workspace.root / "synth" / "queries.jsonl"
    synth = synth_file if config.synthetic and synth_file.is_file() else None
    out_dir = workspace.stage_dir(STAGE)
    inputs = _inputs(root, synth, config, bi_encoder, chunking)
    dataset, pairs, leakage = _training_pairs(root, synth, config, max_line_bytes, text)
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
            text=text,
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
