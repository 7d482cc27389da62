"""Category hierarchy: match coarse queries at category level and fine ones at item level.

Each document may carry a category path (``"Electronics > Audio > Headphones"``
or a list of names). Every prefix of a path is a category *node*; nodes are
embedded as their path text. A query is scored against every node, and a
document inherits the best score among the nodes on its path: that is the
*category run*. The *item run* is ordinary dense retrieval. The two are fused per
query as ``(1 - w) * item + w * category`` on min-max normalised scores, with one
weight per query *level*: ``coarse`` (a category is wanted: "audio equipment")
or ``fine`` (one item is wanted: "Auralis QX-50 headphones").

A query's level comes from its metadata when it has one; otherwise `route_levels`
infers it from the scores (coarse when its best node beats its best document).
For evaluation slices, `levels_from_qrels` labels a query coarse when its relevant
documents span several leaf categories.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from domainfit.core.types import Document, Qrels, Query, Run
from domainfit.retrieval.config import HIERARCHY_GRID
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.hybrid import convex
from domainfit.retrieval.ranking import ranked_ids

Level = Literal["coarse", "fine"]
LEVELS: tuple[Level, ...] = ("coarse", "fine")
Path = tuple[str, ...]


def category_path(doc: Document, path_field: str, separator: str = ">") -> Path:
    """Return a document's category path as a tuple of names (empty when it has none).

    Inputs: the document, the metadata field and the separator of string paths.
    A string is split on the separator; a list is taken as the names. Names are
    stripped and empty ones dropped. Raises `ValueError` for any other type.
    """
    value = doc.metadata.get(path_field)
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.split(separator)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise ValueError(f"document {doc.id!r}: {path_field}: expected a string or a list of strings")
    return tuple(p.strip() for p in parts if p.strip())


def node_text(node: Path) -> str:
    """Return the text a category node is embedded as: its path joined by `` > ``."""
    return " > ".join(node)


class CategoryTree:
    """The category nodes of a corpus and the path of every document.

    Inputs: the corpus, the path field and the separator. Attributes: ``nodes``
    (every path prefix, in first-seen order), ``doc_paths`` (``{doc_id: path}``,
    documents without a path left out) and ``docs_of`` (``{node: doc ids}``
    under the node, descendants included).
    """

    def __init__(self, corpus: Mapping[str, Document], path_field: str, separator: str = ">") -> None:
        self.doc_paths: dict[str, Path] = {}
        index: dict[Path, int] = {}
        self.docs_of: dict[Path, list[str]] = {}
        for did, doc in corpus.items():
            path = category_path(doc, path_field, separator)
            if not path:
                continue
            self.doc_paths[did] = path
            for depth in range(1, len(path) + 1):
                node = path[:depth]
                index.setdefault(node, len(index))
                self.docs_of.setdefault(node, []).append(did)
        self.nodes: list[Path] = list(index)
        self._index = index

    def node_index(self, node: Path) -> int:
        """Return the position of a node in ``nodes`` (KeyError when unknown)."""
        return self._index[node]

    def leaf_of(self, doc_id: str) -> Path | None:
        """Return a document's full path (its leaf category), or None without one."""
        return self.doc_paths.get(doc_id)


class HierarchyRetriever:
    """Category-level retrieval: queries scored against category nodes, documents inherit the best node score.

    Inputs: a `DenseRetriever` (model, prompts and cache are reused), the path
    field and separator. Call `index` with the corpus, then `search`.
    """

    def __init__(self, dense: DenseRetriever, path_field: str = "category", separator: str = ">") -> None:
        self.dense = dense
        self.path_field = path_field
        self.separator = separator
        self.tree: CategoryTree | None = None
        self._node_matrix: np.ndarray | None = None
        self._doc_ids: list[str] = []
        self._doc_nodes: np.ndarray | None = None

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob, for reports and manifests."""
        return {
            **self.dense.get_config_dict(),
            "path_field": self.path_field,
            "separator": self.separator,
            "nodes": len(self.tree.nodes) if self.tree else 0,
        }

    def index(self, corpus: Mapping[str, Document]) -> CategoryTree:
        """Build the category tree and embed its nodes; returns the tree."""
        tree = CategoryTree(corpus, self.path_field, self.separator)
        self.tree = tree
        self._node_matrix = self.dense.encode_documents([node_text(n) for n in tree.nodes])
        self._doc_ids = list(tree.doc_paths)
        depth = max((len(p) for p in tree.doc_paths.values()), default=1)
        pad = len(tree.nodes)  # points at a column of -inf
        table = np.full((len(self._doc_ids), depth), pad, dtype=np.int64)
        for row, did in enumerate(self._doc_ids):
            path = tree.doc_paths[did]
            for level in range(len(path)):
                table[row, level] = tree.node_index(path[: level + 1])
        self._doc_nodes = table
        return tree

    def node_scores(self, queries: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
        """Return the query ids and the (queries x nodes) cosine matrix."""
        if self._node_matrix is None:
            raise RuntimeError("HierarchyRetriever used before index")
        qids = list(queries)
        vectors = self.dense.encode_queries([queries[qid] for qid in qids])
        return qids, vectors @ self._node_matrix.T

    def search(self, queries: Mapping[str, str], k: int = 100, block: int = 256) -> Run:
        """Category run: each document scored by its best-matching node; the top ``k`` per query.

        Documents without a category path are not in the run. Ties (documents of
        one category) keep corpus order.
        """
        qids, sims = self.node_scores(queries)
        assert self._doc_nodes is not None
        run: Run = {}
        if not self._doc_ids:
            return {qid: {} for qid in qids}
        k = min(k, len(self._doc_ids))
        padded = np.concatenate([sims, np.full((sims.shape[0], 1), -np.inf, dtype=sims.dtype)], axis=1)
        for start in range(0, len(qids), block):
            inherited = padded[start : start + block][:, self._doc_nodes].max(axis=2)
            order = np.argsort(-inherited, axis=1, kind="stable")[:, :k]
            for row, top in enumerate(order):
                qid = qids[start + row]
                run[qid] = {self._doc_ids[int(i)]: float(inherited[row, i]) for i in top}
        return run

    def best_node_scores(self, queries: Mapping[str, str]) -> dict[str, float]:
        """Return each query's highest node cosine (used to infer its level)."""
        qids, sims = self.node_scores(queries)
        if sims.shape[1] == 0:
            return dict.fromkeys(qids, -math.inf)
        return {qid: float(sims[row].max()) for row, qid in enumerate(qids)}


def route_levels(
    queries: Mapping[str, Query],
    item_run: Run,
    best_node: Mapping[str, float],
    level_field: str = "level",
) -> dict[str, Level]:
    """Decide each query's level at search time (no relevance labels needed).

    Inputs: the queries, the item (dense) run, each query's best node score and
    the metadata field holding a level. Output: ``{qid: "coarse" | "fine"}``,
    the metadata value when it is ``coarse`` or ``fine``, else ``coarse`` when
    the best node scores above the best document and ``fine`` otherwise.
    """
    out: dict[str, Level] = {}
    for qid in item_run:
        query = queries.get(qid)
        given = str(query.metadata.get(level_field, "")).strip().lower() if query else ""
        if given in LEVELS:
            out[qid] = "coarse" if given == "coarse" else "fine"
            continue
        top_item = max(item_run[qid].values(), default=-math.inf)
        out[qid] = "coarse" if best_node.get(qid, -math.inf) > top_item else "fine"
    return out


def levels_from_qrels(qrels: Qrels, tree: CategoryTree) -> dict[str, Level]:
    """Label each judged query by its relevant documents: coarse when they span several leaf categories.

    Inputs: qrels and the category tree. Output: ``{qid: level}``; a query whose
    relevant documents share one leaf (or have no path) is ``fine``.
    """
    out: dict[str, Level] = {}
    for qid, docs in qrels.items():
        leaves = {tree.leaf_of(d) for d, grade in docs.items() if grade > 0} - {None}
        out[qid] = "coarse" if len(leaves) > 1 else "fine"
    return out


def fuse_hierarchy(
    item_run: Run,
    category_run: Run,
    levels: Mapping[str, Level],
    weights: Mapping[str, float],
    depth: int | None = None,
) -> Run:
    """Fuse item and category runs per query: ``(1 - w) * item + w * category`` on min-max scores.

    Inputs: the two runs, each query's level, ``{level: w}`` and an optional cut-off.
    A query whose level has no weight uses ``w = 0`` (item level only).
    """
    fused: Run = {}
    for qid in set(item_run) | set(category_run):
        weight = weights.get(levels.get(qid, "fine"), 0.0)
        one = convex({qid: item_run.get(qid, {})}, {qid: category_run.get(qid, {})}, weight)[qid]
        if depth is not None:
            one = {doc: one[doc] for doc in ranked_ids(one)[:depth]}
        fused[qid] = one
    return fused


@dataclass
class HierarchyTuning:
    """Category weight per level picked on a dev split, with the dev score of every weight tried."""

    weights: dict[str, float]
    metric: str
    scores: dict[str, dict[str, float]]
    dev_queries: dict[str, int]


def tune_hierarchy(
    item_run: Run,
    category_run: Run,
    levels: Mapping[str, Level],
    qrels: Qrels,
    evaluate: Callable[[Qrels, Run], float],
    metric: str = "ndcg@10",
    grid: Sequence[float] = HIERARCHY_GRID,
) -> HierarchyTuning:
    """Pick the category weight of each level on dev queries of that level.

    Inputs: item and category runs of the dev queries, their levels, the dev
    qrels, a scoring function, the metric name and the grid. A level without dev
    queries gets the weight tuned on all dev queries. Ties prefer the smaller weight.
    Output: a `HierarchyTuning`.
    """

    def pick(subset: Qrels) -> tuple[float, dict[str, float]]:
        tried = {}
        for w in grid:
            tried[str(w)] = evaluate(subset, fuse_hierarchy(item_run, category_run, {}, {"fine": w}))
        best = max(grid, key=lambda w: (round(tried[str(w)], 10), -w))
        return best, tried

    overall, scores_all = pick(qrels)
    weights: dict[str, float] = {}
    scores: dict[str, dict[str, float]] = {"all": scores_all}
    counts: dict[str, int] = {}
    for level in LEVELS:
        subset = {
            qid: rel for qid, rel in qrels.items() if levels.get(qid) == level and any(g > 0 for g in rel.values())
        }
        counts[level] = len(subset)
        if subset:
            weights[level], scores[level] = pick(subset)
        else:
            weights[level] = overall
    return HierarchyTuning(weights=weights, metric=metric, scores=scores, dev_queries=counts)
