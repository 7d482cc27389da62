"""Query-family splits: keep related queries on one side of a train/dev/test split.

A *family* is a group of queries that must never be separated across splits:
queries that share a relevant document, near-duplicate queries, or queries a
user labelled with the same ``metadata["family"]``. Splitting whole families
(instead of single queries) stops a model from being tested on paraphrases of
its training queries or on documents it was trained to retrieve.

Typical use::

    families = derive_families(queries, qrels)
    split_of = split_queries(families, ratios=(0.7, 0.1, 0.2), seed=13)
    per_split = split_qrels(qrels, split_of)
    assert not check_leakage(split_of, families)
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domainfit.core.types import Qrels, Query
from domainfit.text.normalize import normalize_text

#: Split names, in the order the ``ratios`` of `split_queries` refer to.
SPLIT_NAMES: tuple[str, str, str] = ("train", "dev", "test")
#: Prefix of the ids of families found by `derive_families` (not given by the user).
DERIVED_PREFIX = "auto:"

_PUNCT = re.compile(r"[^\w\s]")
_EPS = 1e-9


@dataclass
class Leak:
    """One family whose queries sit in more than one split.

    ``family`` is the family id, ``splits`` the sorted split names it was
    found in and ``query_ids`` the sorted ids of its queries in those splits.
    """

    family: str
    splits: list[str]
    query_ids: list[str]


class _UnionFind:
    """Disjoint sets over the integers ``0 .. n-1`` (path halving, union by size)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        """Return the representative of ``x``'s set."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        """Merge the sets holding ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def normalise_text(text: str) -> str:
    """Return the lossy *matching key* of ``text``, for duplicate and near-duplicate detection.

    The key is `domainfit.text.normalize.normalize_text` (NFKC, control
    characters removed), then casefolded, with punctuation made a space and
    whitespace collapsed, so ``"x-ray"``, ``"X ray"`` and ``"Ｘ－ｒａｙ"`` match.
    It is a key to compare texts with, never text to index or encode.
    """
    return " ".join(_PUNCT.sub(" ", normalize_text(text).casefold()).split())


def explicit_family(query: Query) -> str | None:
    """Return the user-given family of ``query``, else None.

    Only a non-empty string ``metadata["family"]`` counts as user-given.
    """
    value = query.metadata.get("family")
    if isinstance(value, str) and value.strip():
        return value
    return None


def _min_overlap(threshold: float, size: int) -> int:
    """Return the least overlap a set of ``size`` tokens needs for Jaccard >= ``threshold``."""
    return max(1, math.ceil(threshold * size - _EPS))


def _near_duplicate_pairs(token_sets: list[frozenset[str]], threshold: float) -> list[tuple[int, int]]:
    """Return index pairs ``(i, j)`` of distinct token sets with Jaccard >= ``threshold``.

    A prefix-filtering set-similarity join: tokens are ordered rarest first and
    only the first ``|x| - ceil(t * |x|) + 1`` tokens of each set are indexed
    and probed. Two sets with Jaccard >= t always share a token within those
    prefixes, so no pair is missed, while the rare prefix tokens keep the
    candidate lists short (sub-quadratic in practice). Candidates are also
    filtered by size before the exact Jaccard check. ``token_sets`` must hold
    distinct, non-empty sets.
    """
    freq: dict[str, int] = defaultdict(int)
    for tokens in token_sets:
        for token in tokens:
            freq[token] += 1
    ordered = [sorted(tokens, key=lambda tok: (freq[tok], tok)) for tokens in token_sets]
    by_size = sorted(range(len(token_sets)), key=lambda i: (len(token_sets[i]), i))

    # token -> (sizes ascending, set indexes); sets arrive in ascending size order
    index: dict[str, tuple[list[int], list[int]]] = {}
    pairs: list[tuple[int, int]] = []
    for i in by_size:
        x = token_sets[i]
        size = len(x)
        prefix = ordered[i][: size - _min_overlap(threshold, size) + 1]
        min_size = _min_overlap(threshold, size)
        candidates: set[int] = set()
        for token in prefix:
            posting = index.get(token)
            if posting is None:
                continue
            sizes, ids = posting
            start = bisect.bisect_left(sizes, min_size)
            candidates.update(ids[start:])
        for j in sorted(candidates):
            y = token_sets[j]
            inter = len(x & y)
            if inter >= threshold * (size + len(y) - inter) - _EPS:
                pairs.append((j, i))
        for token in prefix:
            posting = index.setdefault(token, ([], []))
            posting[0].append(size)
            posting[1].append(i)
    return pairs


def _union_shared_documents(uf: _UnionFind, qids: list[str], qrels: Qrels) -> None:
    """Union the positions in ``qids`` of queries that share a relevant document."""
    position = {qid: n for n, qid in enumerate(qids)}
    first_query_of_doc: dict[str, int] = {}
    for qid, docs in qrels.items():
        n = position.get(qid)
        if n is None:
            continue
        for doc_id, relevance in docs.items():
            if relevance > 0:
                uf.union(n, first_query_of_doc.setdefault(doc_id, n))


def _union_near_duplicates(uf: _UnionFind, texts: list[str], threshold: float) -> None:
    """Union the positions of near-duplicate ``texts`` (same token set, or Jaccard >= threshold)."""
    first_with_set: dict[frozenset[str], int] = {}
    for n, text in enumerate(texts):
        tokens = frozenset(normalise_text(text).split())
        if tokens:
            uf.union(n, first_with_set.setdefault(tokens, n))
    distinct = list(first_with_set)
    owners = list(first_with_set.values())
    for a, b in _near_duplicate_pairs(distinct, threshold):
        uf.union(owners[a], owners[b])


def derive_families(queries: Mapping[str, Query], qrels: Qrels, *, overlap_threshold: float = 0.8) -> dict[str, str]:
    """Assign every query to a family; return ``{query_id: family_id}``.

    Inputs: the queries (``{id: Query}``), the qrels
    (``{query_id: {doc_id: relevance}}``) and the token-set Jaccard threshold
    ``overlap_threshold`` in ``(0, 1]`` above which two queries are
    near-duplicates.

    Rules:

    * A query whose ``metadata["family"]`` is a non-empty string belongs to
      exactly that family. **The explicit family wins**: such queries take no
      part in derivation, so they are never merged with other families, even
      when they share a relevant document or are near-duplicates of a query
      outside their family. (Label all related queries alike, or run
      `check_qrels_leakage` on queries without labels to audit the labels.)
    * Every other query is grouped with union-find: queries that share a
      relevant document (relevance > 0) are one family, and so are
      near-duplicates: queries with the same normalised text (casefolded,
      punctuation stripped, whitespace collapsed; see `normalise_text`), which
      implies the same token set, or whose token sets have a Jaccard
      similarity >= ``overlap_threshold``. Near-duplicate search buckets equal
      token sets and uses an inverted index over rare tokens (prefix
      filtering), so 100k queries take seconds, not hours. Queries with empty
      normalised text are only grouped through shared documents.
    * A derived family is named ``"auto:" + <smallest query id in it>``
      (a ``#`` is appended if that clashes with an explicit family name).

    Qrels entries for query ids not in ``queries`` are ignored. Raises
    ValueError when ``overlap_threshold`` is outside ``(0, 1]``.
    """
    if not 0.0 < overlap_threshold <= 1.0:
        raise ValueError(f"overlap_threshold must be in (0, 1], got {overlap_threshold}")
    families: dict[str, str] = {}
    derived: list[str] = []
    for qid in sorted(queries):
        given = explicit_family(queries[qid])
        if given is None:
            derived.append(qid)
        else:
            families[qid] = given
    explicit_names = set(families.values())
    uf = _UnionFind(len(derived))
    _union_shared_documents(uf, derived, qrels)
    _union_near_duplicates(uf, [queries[qid].text for qid in derived], overlap_threshold)

    names: dict[int, str] = {}
    for n, qid in enumerate(derived):  # ``derived`` is sorted: first seen = smallest id
        root = uf.find(n)
        if root not in names:
            name = DERIVED_PREFIX + qid
            while name in explicit_names:
                name += "#"
            names[root] = name
        families[qid] = names[root]
    return {qid: families[qid] for qid in sorted(families)}


def _group(families: Mapping[str, str]) -> dict[str, list[str]]:
    """Return ``{family_id: sorted query ids}`` for a ``{query_id: family_id}`` mapping."""
    members: dict[str, list[str]] = defaultdict(list)
    for qid in sorted(families):
        members[families[qid]].append(qid)
    return dict(members)


def split_queries(
    families: Mapping[str, str],
    *,
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 13,
) -> dict[str, str]:
    """Assign whole families to splits; return ``{query_id: "train" | "dev" | "test"}``.

    Inputs: ``{query_id: family_id}`` (from `derive_families`), the target
    shares of queries for train, dev and test (non-negative, normalised to sum
    to 1; a zero share leaves that split empty) and the random seed.

    Families are sorted by id, shuffled with ``random.Random(seed)`` and
    assigned one by one to the split whose fill (queries / target queries)
    would be lowest after adding the family, so split sizes in queries
    approach the ratios (within about one family's size). The result depends
    only on the inputs and the seed. Raises ValueError on bad ratios.
    """
    if len(ratios) != len(SPLIT_NAMES) or any(r < 0 or math.isnan(r) for r in ratios):
        raise ValueError(f"ratios must be three non-negative numbers, got {ratios!r}")
    total_ratio = sum(ratios)
    if total_ratio <= 0:
        raise ValueError(f"ratios must not all be zero, got {ratios!r}")
    members = _group(families)
    order = sorted(members)
    random.Random(seed).shuffle(order)

    total = len(families)
    targets = [total * r / total_ratio for r in ratios]
    active = [k for k, target in enumerate(targets) if target > 0]
    counts = [0] * len(SPLIT_NAMES)
    split_of: dict[str, str] = {}
    for family in order:
        size = len(members[family])
        best = min(active, key=lambda k: ((counts[k] + size) / targets[k], k))
        counts[best] += size
        for qid in members[family]:
            split_of[qid] = SPLIT_NAMES[best]
    return {qid: split_of[qid] for qid in sorted(split_of)}


def split_qrels(qrels: Qrels, split_of: Mapping[str, str]) -> dict[str, Qrels]:
    """Partition ``qrels`` by split; return ``{split_name: qrels of that split}``.

    Inputs: the qrels and ``{query_id: split_name}``. The result always has
    ``train``, ``dev`` and ``test`` keys (possibly empty) plus any other split
    name used. Queries with no entry in ``split_of`` are left out. Each query's
    judgements are copied, so the result does not share dicts with ``qrels``.
    """
    out: dict[str, Qrels] = {name: {} for name in SPLIT_NAMES}
    for name in sorted(set(split_of.values())):
        out.setdefault(name, {})
    for qid in sorted(qrels):
        split = split_of.get(qid)
        if split is not None:
            out[split][qid] = dict(qrels[qid])
    return out


def _leaks(splits_of_query: Mapping[str, Iterable[str]], families: Mapping[str, str]) -> list[Leak]:
    """Return the families whose queries span more than one split, sorted by family id."""
    found: dict[str, set[str]] = defaultdict(set)
    members: dict[str, list[str]] = defaultdict(list)
    for qid in sorted(splits_of_query):
        family = families.get(qid)
        if family is None:
            continue
        found[family].update(splits_of_query[qid])
        members[family].append(qid)
    return [
        Leak(family=family, splits=sorted(found[family]), query_ids=members[family])
        for family in sorted(found)
        if len(found[family]) > 1
    ]


def check_leakage(split_of: Mapping[str, str], families: Mapping[str, str]) -> list[Leak]:
    """Return one `Leak` per family found in more than one split (empty when clean).

    Inputs: ``{query_id: split_name}`` and ``{query_id: family_id}``. Queries
    missing from either mapping are ignored. Sorted by family id.
    """
    return _leaks({qid: (split,) for qid, split in split_of.items()}, families)


def check_qrels_leakage(
    qrels_by_split: Mapping[str, Qrels],
    queries: Mapping[str, Query],
    *,
    overlap_threshold: float = 0.8,
) -> list[Leak]:
    """Check given split qrels (e.g. a user's train and test files) for leaking families.

    Inputs: ``{split_name: qrels}``, the queries (for their text and any
    ``metadata["family"]``) and the near-duplicate threshold. Families are
    derived with `derive_families` over the union of all the split qrels (a
    query id absent from ``queries`` counts as a query with no text), and every
    family whose queries appear in more than one split is returned, sorted by
    family id. The same query id judged in two splits is a leak too.
    """
    union: Qrels = {}
    splits_of_query: dict[str, set[str]] = defaultdict(set)
    for split, qrels in qrels_by_split.items():
        for qid, docs in qrels.items():
            merged = union.setdefault(qid, {})
            for doc_id, relevance in docs.items():
                merged[doc_id] = max(relevance, merged.get(doc_id, relevance))
            splits_of_query[qid].add(split)
    pool = {qid: queries.get(qid) or Query(id=qid, text="") for qid in union}
    families = derive_families(pool, union, overlap_threshold=overlap_threshold)
    return _leaks(splits_of_query, families)
