"""Which queries of a split can be evaluated, and which split tunes the hybrid weight.

Every stage that evaluates a split calls `check_evaluated_split` right after
loading the data, before any model, so a missing or unjudged split is one
error line, not a failure after minutes of encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.errors import InputError

if TYPE_CHECKING:
    from domainfit.core.types import Qrels
    from domainfit.data.beir import BeirDataset


def judged_query_ids(qrels: Qrels, queries: Mapping[str, Any]) -> list[str]:
    """Return the queries of ``qrels`` that can be evaluated: in ``queries`` and with a document of grade > 0."""
    return [qid for qid, docs in qrels.items() if qid in queries and any(g > 0 for g in docs.values())]


#: A tuning split with fewer judged queries than this is too small to set a hybrid weight on.
MIN_TUNING_QUERIES = 3


def tuning_qrels(
    dataset: BeirDataset, preferred: str | None, fallback: str = "train", min_queries: int = MIN_TUNING_QUERIES
) -> tuple[Qrels | None, str | None, str | None]:
    """Return the qrels the hybrid weight is tuned on, their split, and a note when they are not ``preferred``'s.

    The preferred split (dev) is used when it has ``min_queries`` judged
    queries. Otherwise the ``fallback`` split's queries (the train queries:
    few-shot tuning) are used when they are more, with a note saying so, so a
    corpus with a few labelled queries and no dev split still gets a tuned
    weight instead of a fixed 0.5. None qrels when no split is judged.
    """
    if not preferred:  # tuning turned off
        return None, None, None
    chosen = dataset.qrels.get(preferred)
    n_chosen = len(judged_query_ids(chosen, dataset.queries)) if chosen else 0
    if n_chosen >= min_queries or fallback == preferred:
        return chosen, preferred, None
    other = dataset.qrels.get(fallback)
    n_other = len(judged_query_ids(other, dataset.queries)) if other else 0
    if n_other <= n_chosen:
        return chosen, preferred, None
    what = f"qrels/{preferred}.tsv has {n_chosen} judged queries" if chosen else f"no qrels/{preferred}.tsv"
    return (
        other,
        fallback,
        (
            f"{what} (< {min_queries}): the hybrid weight is tuned on the {n_other} {fallback} queries "
            "instead (few-shot)"
        ),
    )


def check_evaluated_split(
    dataset: BeirDataset, split: str, path: Path | str | None = None, field: str = "split"
) -> Qrels:
    """Return the qrels of ``split``, raising `InputError` unless it exists and has a judged query.

    Inputs: the loaded dataset, the split a stage evaluates, where to point
    the error (default: the dataset's ``qrels`` folder) and the config key
    that named the split. Call it right after loading the data, before any model.
    """
    folder = Path(path) if path is not None else (dataset.root / "qrels" if dataset.root else Path("qrels"))
    if split not in dataset.qrels:
        available = ", ".join(sorted(dataset.qrels)) or "none"
        raise InputError(folder, 0, field, f"no qrels/{split}.tsv (available: {available})")
    qrels = dataset.qrels[split]
    if not judged_query_ids(qrels, dataset.queries):
        file = folder / f"{split}.tsv" if folder.name == "qrels" else folder
        why = "no judgements" if not qrels else "no judgement with grade > 0 for a query of queries.jsonl"
        raise InputError(file, 0, field, f"split {split!r} has no judged query ({why}): nothing to evaluate")
    return qrels
