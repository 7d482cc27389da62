"""Training data of the ``mine`` stage: (query, positive) pairs in, trainer-ready datasets out.

In: the train split of a BEIR folder's qrels (every judgement with grade > 0)
and, when the ``synth`` stage ran, ``<workspace>/synth/queries.jsonl`` (one
object per line: ``_id``, ``text``, ``doc_id``, ``source``, ``positive_text``,
``negatives``, ``weight``). `check_training_leakage` makes sure that no dev or
test query, nor a near-duplicate of one, is trained on.

Out: Hugging Face datasets in the column layout the sentence-transformers
trainer expects, ``anchor``, ``positive``, ``negative_1`` .. ``negative_n``
(strings only: the trainer feeds every column but ``label``/``score`` to the
loss), written through an Arrow stream file so memory stays flat.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from domainfit.core.errors import InputError
from domainfit.core.types import Document
from domainfit.data.beir import BeirDataset
from domainfit.data.jsonl import MAX_LINE_BYTES, iter_jsonl, require_str
from domainfit.data.splits import normalise_text

#: Where the ``synth`` stage writes its queries, relative to the workspace.
SYNTH_QUERIES = Path("synth") / "queries.jsonl"


@dataclass(frozen=True)
class TrainingPair:
    """One (query, positive) training pair.

    ``origin`` is ``"labelled"`` (train qrels) or ``"synthetic"`` (synth
    queries); ``source`` is ``"qrels"`` or the synth method (``title``,
    ``clicks`` ...). ``positive_text`` replaces the document's text as the
    positive when set. ``click_negatives`` are skip-above document ids from
    click logs. ``line`` is the line of the synth file (0 for labelled pairs).
    """

    query_id: str
    query: str
    doc_id: str
    origin: Literal["labelled", "synthetic"]
    source: str
    positive_text: str | None = None
    click_negatives: tuple[str, ...] = ()
    weight: float = 1.0
    line: int = 0

    def positive(self, corpus: Mapping[str, Document]) -> str:
        """Return the positive's text: ``positive_text`` or the document's title and text."""
        return self.positive_text if self.positive_text is not None else corpus[self.doc_id].full_text()


def labelled_pairs(dataset: BeirDataset, split: str) -> list[TrainingPair]:
    """One pair per judgement with grade > 0 in ``split``, in qrels order.

    Inputs: a loaded BEIR dataset and a split name. Output: the pairs (empty
    when the split has no qrels file).
    """
    pairs: list[TrainingPair] = []
    for qid, docs in dataset.qrels.get(split, {}).items():
        text = dataset.queries[qid].text
        pairs.extend(
            TrainingPair(query_id=qid, query=text, doc_id=doc_id, origin="labelled", source="qrels")
            for doc_id, grade in docs.items()
            if grade > 0
        )
    return pairs


def _read_weight(record: dict[str, Any], path: Path, line: int) -> float:
    """Return the record's ``weight`` (default 1.0): a finite number >= 0."""
    value = record.get("weight", 1.0)
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InputError(path, line, "weight", f"must be a finite number >= 0, got {value!r:.40}")
    return float(value)


def _read_click_negatives(
    record: dict[str, Any], corpus: Mapping[str, Document], path: Path, line: int
) -> tuple[str, ...]:
    """Return the record's ``negatives`` (document ids), checked against the corpus."""
    value = record.get("negatives") or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(path, line, "negatives", "must be a list of document ids")
    for doc_id in value:
        if doc_id not in corpus:
            raise InputError(path, line, "negatives", f"unknown document {doc_id!r} (not in corpus.jsonl)")
    return tuple(dict.fromkeys(value))


def read_synthetic_queries(
    path: Path, corpus: Mapping[str, Document], max_line_bytes: int = MAX_LINE_BYTES
) -> list[TrainingPair]:
    """Read and validate the synth stage's ``queries.jsonl`` into pairs.

    Inputs: the file, the corpus (every ``doc_id`` and click negative must be
    in it) and the largest accepted line. Output: one pair per line, in file
    order; lines with ``weight`` 0 are left out. Raises `InputError` naming the
    file, line and field on any defect (duplicate ids included).
    """
    pairs: list[TrainingPair] = []
    seen: dict[str, int] = {}
    for line, record in iter_jsonl(path, max_line_bytes):
        qid = require_str(record, "_id", path, line)
        if qid in seen:
            raise InputError(path, line, "_id", f"duplicate id {qid!r} (first on line {seen[qid]})")
        seen[qid] = line
        text = require_str(record, "text", path, line)
        doc_id = require_str(record, "doc_id", path, line)
        if doc_id not in corpus:
            raise InputError(path, line, "doc_id", f"unknown document {doc_id!r} (not in corpus.jsonl)")
        source = require_str(record, "source", path, line)
        positive_text = require_str(record, "positive_text", path, line, required=False) or None
        weight = _read_weight(record, path, line)
        if weight == 0:
            continue
        pairs.append(
            TrainingPair(
                query_id=qid,
                query=text,
                doc_id=doc_id,
                origin="synthetic",
                source=source,
                positive_text=positive_text,
                click_negatives=_read_click_negatives(record, corpus, path, line),
                weight=weight,
                line=line,
            )
        )
    return pairs


def cap_synthetic(pairs: Sequence[TrainingPair], share: float | None, seed: int) -> tuple[list[TrainingPair], int]:
    """Keep at most ``share`` of the pairs synthetic when labelled pairs exist; return the pairs and how many went.

    Synthetic queries are many and cheap; labelled ones are few and look like
    real queries. Without a cap a large synthetic set can drown the labelled
    pairs. The kept synthetic pairs are a seeded sample, in their original order.
    ``share`` None (or no labelled pairs) keeps every pair.
    """
    labelled = sum(p.origin == "labelled" for p in pairs)
    synthetic = [i for i, p in enumerate(pairs) if p.origin == "synthetic"]
    if share is None or not labelled or share >= 1:
        return list(pairs), 0
    allowed = int(labelled * share / (1 - share))
    if len(synthetic) <= allowed:
        return list(pairs), 0
    kept = set(random.Random(seed).sample(synthetic, allowed))
    out = [p for i, p in enumerate(pairs) if p.origin != "synthetic" or i in kept]
    return out, len(synthetic) - allowed


def labelled_positives(dataset: BeirDataset) -> dict[str, set[str]]:
    """Return ``{query_id: documents with grade > 0}`` over every split's qrels."""
    out: dict[str, set[str]] = {}
    for qrels in dataset.qrels.values():
        for qid, docs in qrels.items():
            out.setdefault(qid, set()).update(d for d, grade in docs.items() if grade > 0)
    return out


def excluded_documents(pairs: Sequence[TrainingPair], dataset: BeirDataset) -> list[frozenset[str]]:
    """For each pair, the documents that must never be its negatives.

    That is its positive document and every document labelled relevant (grade
    > 0, any split) for its query, found by query id or, for synthetic queries,
    by a labelled query with the same normalised text.
    """
    by_id = labelled_positives(dataset)
    by_text: dict[str, set[str]] = {}
    for qid, docs in by_id.items():
        if qid in dataset.queries:
            by_text.setdefault(normalise_text(dataset.queries[qid].text), set()).update(docs)
    out = []
    for pair in pairs:
        docs = {pair.doc_id}
        docs.update(by_id.get(pair.query_id, ()) if pair.origin == "labelled" else ())
        docs.update(by_text.get(normalise_text(pair.query), ()))
        out.append(frozenset(docs))
    return out


# ----------------------------------------------------------------------------- leakage


@dataclass(frozen=True)
class LeakMatch:
    """A training query that is (nearly) a held-out query: which one, in which split, how similar."""

    held_out_id: str
    split: str
    jaccard: float
    identical: bool


class NearDuplicateIndex:
    """Finds, for a text, the most similar of a fixed set of texts by token-set Jaccard.

    Inputs: ``{id: (split, text)}`` and the threshold. Texts are compared after
    `normalise_text`; ``match`` returns the best `LeakMatch` with Jaccard >=
    threshold, or None. Probing only the rarest ``|x| - ceil(t|x|) + 1``
    tokens of the query against a full inverted index cannot miss a match
    (two sets with Jaccard >= t share at least ``ceil(t|x|)`` tokens).
    """

    def __init__(self, texts: Mapping[str, tuple[str, str]], threshold: float = 0.8) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._split = {ident: split for ident, (split, _) in texts.items()}
        self._exact: dict[str, str] = {}
        self._sets: dict[str, frozenset[str]] = {}
        self._postings: dict[str, list[str]] = {}
        for ident in sorted(texts):
            norm = normalise_text(texts[ident][1])
            self._exact.setdefault(norm, ident)
            tokens = frozenset(norm.split())
            self._sets[ident] = tokens
            for token in tokens:
                self._postings.setdefault(token, []).append(ident)

    def match(self, text: str) -> LeakMatch | None:
        """Return the held-out text most similar to ``text`` when at or over the threshold."""
        norm = normalise_text(text)
        if norm in self._exact:
            ident = self._exact[norm]
            return LeakMatch(ident, self._split[ident], 1.0, True)
        tokens = frozenset(norm.split())
        if not tokens:
            return None
        need = max(1, math.ceil(self.threshold * len(tokens) - 1e-9))
        prefix = sorted(tokens, key=lambda t: (len(self._postings.get(t, ())), t))[: len(tokens) - need + 1]
        best: LeakMatch | None = None
        for ident in sorted({i for t in prefix for i in self._postings.get(t, ())}):
            other = self._sets[ident]
            inter = len(tokens & other)
            jaccard = inter / (len(tokens) + len(other) - inter)
            if jaccard >= self.threshold - 1e-9 and (best is None or jaccard > best.jaccard):
                best = LeakMatch(ident, self._split[ident], jaccard, False)
        return best


@dataclass
class LeakageReport:
    """What the leakage check found and did: labelled near-duplicates it dropped (``drop`` policy)."""

    checked: int
    held_out_queries: int
    dropped: list[dict[str, Any]]


def _leak_error(pair: TrainingPair, found: LeakMatch, where: Path) -> InputError:
    """Build the one-line error for a training query that leaks a held-out query."""
    how = "the same as" if found.identical else f"a near-duplicate (token Jaccard {found.jaccard:.2f}) of"
    field = "text" if pair.origin == "synthetic" else "query-id"
    return InputError(
        where,
        pair.line,
        field,
        f"training query {pair.query_id!r} ({pair.query!r:.60}) is {how} {found.split} query "
        f"{found.held_out_id!r}; remove it so {found.split} scores stay honest",
    )


def check_training_leakage(
    pairs: Sequence[TrainingPair],
    dataset: BeirDataset,
    *,
    train_split: str,
    synth_path: Path,
    threshold: float = 0.8,
    labelled_near_duplicates: Literal["drop", "fail"] = "drop",
) -> tuple[list[TrainingPair], LeakageReport]:
    """Fail when a training query is a dev/test query or a near-duplicate of one.

    Inputs: the training pairs, the dataset (its non-train qrels splits are the
    held-out queries), the train split name, the synth file (named in errors),
    the token-Jaccard threshold and what to do with *labelled* train queries
    that are near-duplicates, not copies, of held-out ones (``drop`` them with
    a record in the report, or ``fail``). A synthetic query that is a held-out
    query or a near-duplicate, and a labelled train query with the same id or
    the same normalised text as a held-out one, always raise `InputError`
    (file, line, query). Output: the pairs to train on and a `LeakageReport`.
    """
    held = {
        qid: (split, dataset.queries[qid].text if qid in dataset.queries else "")
        for split, qrels in sorted(dataset.qrels.items())
        if split != train_split
        for qid in qrels
    }
    index = NearDuplicateIndex(held, threshold)
    qrels_path = (dataset.root or Path(".")) / "qrels" / f"{train_split}.tsv"
    kept: list[TrainingPair] = []
    dropped: list[dict[str, Any]] = []
    verdicts: dict[tuple[str, str], LeakMatch | None] = {}
    for pair in pairs:
        key = (pair.origin, pair.query_id)
        if key not in verdicts:
            same_id = pair.origin == "labelled" and pair.query_id in held
            verdicts[key] = (
                LeakMatch(pair.query_id, held[pair.query_id][0], 1.0, True) if same_id else index.match(pair.query)
            )
        found = verdicts[key]
        if found is None:
            kept.append(pair)
            continue
        if pair.origin == "synthetic":
            raise _leak_error(pair, found, synth_path)
        if found.identical or labelled_near_duplicates == "fail":
            raise _leak_error(pair, found, qrels_path)
        if not any(d["query_id"] == pair.query_id for d in dropped):
            dropped.append(
                {
                    "query_id": pair.query_id,
                    "query": pair.query,
                    "held_out_id": found.held_out_id,
                    "held_out_split": found.split,
                    "jaccard": round(found.jaccard, 4),
                }
            )
    return kept, LeakageReport(checked=len(verdicts), held_out_queries=len(held), dropped=dropped)


# ----------------------------------------------------------------------------- output


def trainer_columns(n_negatives: int) -> list[str]:
    """Return the column names ``anchor, positive, negative_1 .. negative_n``."""
    return ["anchor", "positive", *(f"negative_{i}" for i in range(1, n_negatives + 1))]


@contextlib.contextmanager
def _datasets_quiet() -> Iterator[None]:
    """Silence the tqdm bars of ``datasets`` (save/load) inside the block; restore afterwards."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def write_trainer_dataset(
    rows: Iterable[Sequence[str]], n_negatives: int, dest: Path, *, rows_per_batch: int = 1000
) -> int:
    """Save rows ``(anchor, positive, negative_1 .. negative_n)`` as a dataset with ``save_to_disk``.

    Inputs: the rows (strings, ``2 + n_negatives`` per row, consumed lazily),
    ``n_negatives`` and the destination folder (must not exist). The rows are
    streamed to an Arrow file beside ``dest`` and memory-mapped, so memory
    does not grow with the number of rows. Output: the number of rows.
    """
    import pyarrow as pa
    from datasets import Dataset

    columns = trainer_columns(n_negatives)
    schema = pa.schema([(name, pa.string()) for name in columns])
    scratch = dest.parent / f".{dest.name}.arrow"
    total = 0
    try:
        with pa.OSFile(str(scratch), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            batch: list[Sequence[str]] = []
            for row in rows:
                if len(row) != len(columns):
                    raise ValueError(f"row {total} has {len(row)} fields, expected {len(columns)}")
                batch.append(row)
                total += 1
                if len(batch) == rows_per_batch:
                    writer.write_batch(pa.record_batch(list(zip(*batch, strict=True)), schema=schema))
                    batch = []
            if batch or total == 0:
                arrays = [list(col) for col in zip(*batch, strict=True)] if batch else [[] for _ in columns]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
        with _datasets_quiet():
            dataset = Dataset.from_file(str(scratch))
            dataset.save_to_disk(str(dest))
            del dataset
    finally:
        scratch.unlink(missing_ok=True)
    return total


def save_subsets(source: Path, subsets: Mapping[str, Sequence[int]], dest_root: Path) -> dict[str, int]:
    """Save row subsets of a saved dataset as datasets of their own, rows in the given order.

    Inputs: a folder written by `write_trainer_dataset`, ``{name: row indices}``
    and the folder that receives one sub-folder per name. Output: rows per name.
    """
    from datasets import load_from_disk

    counts = {}
    with _datasets_quiet():
        dataset = load_from_disk(str(source))
        for name, rows in subsets.items():
            dataset.select(list(rows), keep_in_memory=True).save_to_disk(str(dest_root / name))
            counts[name] = len(rows)
        del dataset
    return counts
