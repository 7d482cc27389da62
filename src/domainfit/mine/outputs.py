"""Artifacts of the ``mine`` stage: the datasets, the curriculum, ``negatives.jsonl`` and the chunking summary.

`_write_outputs` writes everything ``mine`` produces besides ``summary.json``,
``config.json`` and ``manifest.json`` (`domainfit.stages.mine.run_mine` writes
those) into the stage's temporary folder; `_chunk_summary` builds
``summary.json`` → ``chunking``. Imported by `domainfit.stages.mine`, which is
imported by `domainfit.config`, so its top-level imports stay light.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.files import atomic_write_json
from domainfit.data.jsonl import dumps_line

if TYPE_CHECKING:
    from domainfit.data.beir import BeirDataset
    from domainfit.mine.curriculum import Stage
    from domainfit.mine.negatives import MiningResult, Negative
    from domainfit.synth.chunked import ChunkPlan, ChunkVectors
    from domainfit.synth.datasets import TrainingPair


def _write_outputs(
    tmp: Path,
    dataset: BeirDataset,
    pairs: list[TrainingPair],
    mined: MiningResult,
    stages: list[Stage],
    difficulties: list[float],
    positive_chunks: dict[int, str] | None = None,
) -> list[str]:
    """Write the datasets, curriculum and ``negatives.jsonl`` into ``tmp``; return the files written.

    ``positive_chunks``: pair index -> id of the chunk that became its positive (chunking on).
    """
    from domainfit.core.progress import progress_bar
    from domainfit.mine.curriculum import stage_of_rows
    from domainfit.synth.datasets import save_subsets, write_trainer_dataset

    corpus = dataset.corpus
    n = mined.settings.negatives

    def rows() -> Any:
        with progress_bar("writing dataset", len(mined.examples)) as advance:
            for example in mined.examples:
                pair = pairs[example.pair]
                negatives = (
                    x.text if x.text is not None else x.chunk_text or corpus[x.doc_id].full_text()
                    for x in example.negatives
                )
                yield (pair.query, pair.positive(corpus), *negatives)
                advance(1)

    write_trainer_dataset(rows(), n, tmp / "dataset")
    save_subsets(tmp / "dataset", {s.name: s.rows for s in stages}, tmp / "curriculum")
    atomic_write_json(
        tmp / "curriculum" / "stages.json", {"format_version": 1, "stages": [s.summary() for s in stages]}
    )
    stage_names = stage_of_rows(stages, len(mined.examples))
    with (tmp / "negatives.jsonl").open("w", encoding="utf-8") as handle:
        for row, example in enumerate(mined.examples):
            pair = pairs[example.pair]
            record = {
                "row": row,
                "query_id": pair.query_id,
                "origin": pair.origin,
                "query_source": pair.source,
                "query": pair.query,
                "positive_id": pair.doc_id,
                "positive_text": pair.positive_text,
                "positive_score": round(example.positive_score, 6),
                "positive_ce_score": example.positive_ce_score,
                "weight": pair.weight,
                "difficulty": round(difficulties[row], 6),
                "stage": stage_names[row],
                "negatives": [_negative_record(x) for x in example.negatives],
            }
            if positive_chunks is not None:
                record["positive_chunk"] = positive_chunks.get(example.pair)
            handle.write(dumps_line(record))
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())


def _negative_record(negative: Negative) -> dict[str, Any]:
    """Return a negative as a ``negatives.jsonl`` object (``text`` for generated passages, ``chunk`` for chunks)."""
    record = asdict(negative)
    del record["chunk_text"]
    for key in ("text", "chunk"):
        if record[key] is None:
            del record[key]
    return record


def _chunk_summary(
    plan: ChunkPlan, chunks: ChunkVectors | None, mined: MiningResult, positive_chunks: dict[int, str]
) -> dict[str, Any]:
    """Return ``summary.json`` → ``chunking``: settings, long documents, positives and negatives replaced by chunks.

    ``positives_replaced`` counts pairs (per origin); ``positives_replaced_in_dataset``
    the dataset rows among them (pairs without enough negatives are left out).
    """
    by_source: dict[str, int] = {}
    for example in mined.examples:
        for negative in example.negatives:
            if negative.chunk is not None:
                by_source[negative.source] = by_source.get(negative.source, 0) + 1
    plan.counts.setdefault("chunks", len(chunks.chunks) if chunks is not None else 0)
    plan.counts["negatives_replaced"] = sum(by_source.values())
    plan.counts["negatives_replaced_by_source"] = by_source
    plan.counts["positives_replaced_in_dataset"] = sum(ex.pair in positive_chunks for ex in mined.examples)
    return plan.summary()
