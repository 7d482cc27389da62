"""Few labels, no dev split: select on held-out folds of the train queries instead.

When the dev split is missing or has fewer than ``min_dev_queries`` queries,
model selection scores each recipe on folds of the train queries: train on
the other folds, evaluate on the held-out one. Folds are cut by query family
(`domainfit.data.splits.derive_families`: the user's ``metadata["family"]``,
else queries sharing a relevant document or near-duplicates), so a family
never sits on both sides of a fold.

Example::

    if needs_folds(dataset.qrels.get("dev"), 30):
        folds = selection_folds(dataset.qrels["train"], dataset.queries, n_folds=3, seed=13)
        for train_part, heldout in folds: ...
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from domainfit.core.types import Qrels, Query
from domainfit.data.splits import derive_families
from domainfit.recipe.settings import Setting


def evaluated_queries(qrels: Qrels | None) -> list[str]:
    """Return the ids of the queries with at least one relevant document (grade > 0), in qrels order."""
    return [qid for qid, docs in (qrels or {}).items() if any(g > 0 for g in docs.values())]


def needs_folds(dev_qrels: Qrels | None, min_dev_queries: int) -> bool:
    """Return True when the dev split is missing or has fewer than ``min_dev_queries`` evaluated queries."""
    return len(evaluated_queries(dev_qrels)) < min_dev_queries


def selection_setting(dev_qrels: Qrels | None, min_dev_queries: int, n_folds: int) -> Setting:
    """Record where selection happens: ``Setting("selection", "dev" | "folds", reason)``, for the report."""
    n = len(evaluated_queries(dev_qrels))
    if n >= min_dev_queries:
        return Setting("selection", "dev", f"{n} dev queries (>= {min_dev_queries}): select on the dev split")
    where = "no dev split" if dev_qrels is None else f"only {n} dev queries (< {min_dev_queries})"
    return Setting("selection", "folds", f"{where}: few-shot, select on {n_folds} held-out folds of the train queries")


def selection_folds(
    train_qrels: Qrels, queries: Mapping[str, Query], n_folds: int, seed: int
) -> list[tuple[Qrels, Qrels]]:
    """Split the train qrels into ``(train_part, heldout_part)`` folds, whole families on one side.

    Inputs: the train qrels, every query (their ``metadata["family"]`` is
    honoured), the number of folds and the seed. Families are shuffled with
    the seed, then placed largest first into the fold with the fewest queries.
    Output: ``min(n_folds, families)`` folds; each held-out part is one fold,
    its train part the others. Raises ValueError with fewer than two families.
    """
    qids = [qid for qid in evaluated_queries(train_qrels) if qid in queries]
    families = derive_families({qid: queries[qid] for qid in qids}, {qid: train_qrels[qid] for qid in qids})
    members: dict[str, list[str]] = {}
    for qid in qids:
        members.setdefault(families[qid], []).append(qid)
    if len(members) < 2:
        raise ValueError(f"fold selection needs at least two query families in the train qrels, found {len(members)}")
    order = sorted(members)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda fam: -len(members[fam]))  # stable: equal sizes keep the seeded order
    k = min(n_folds, len(members))
    folds: list[list[str]] = [[] for _ in range(k)]
    for family in order:
        smallest = min(range(k), key=lambda i: len(folds[i]))
        folds[smallest].extend(members[family])
    out = []
    for held in folds:
        held_set = set(held)
        train_part = {qid: dict(train_qrels[qid]) for qid in qids if qid not in held_set}
        out.append((train_part, {qid: dict(train_qrels[qid]) for qid in held}))
    return out
