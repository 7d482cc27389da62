"""Tests for query-family derivation, family-preserving splits and leakage checks."""

from __future__ import annotations

import itertools
import random

import pytest

from domainfit.core.types import Qrels, Query
from domainfit.data.splits import (
    Leak,
    check_leakage,
    check_qrels_leakage,
    derive_families,
    normalise_text,
    split_qrels,
    split_queries,
)

WORDS = [f"word{i}" for i in range(300)]


def synthetic(seed: int, n: int = 300) -> tuple[dict[str, Query], Qrels]:
    """Queries with shared relevant documents and planted near-duplicates."""
    rng = random.Random(seed)
    queries: dict[str, Query] = {}
    qrels: Qrels = {}
    for i in range(n):
        qid = f"q{i:04d}"
        if i and rng.random() < 0.25:
            # near-duplicate of an earlier query: same words, new case/punctuation
            base = queries[f"q{rng.randrange(i):04d}"].text
            text = base.upper().replace(" ", ", ", 1) + "?"
        else:
            text = " ".join(rng.sample(WORDS, rng.randint(3, 9)))
        queries[qid] = Query(qid, text)
        # a small doc pool so that many queries share relevant documents
        qrels[qid] = {f"d{rng.randrange(n)}": 1 for _ in range(rng.randint(1, 2))}
        if rng.random() < 0.2:
            qrels[qid][f"d{rng.randrange(n)}"] = 0  # non-relevant judgements must not link
    return queries, qrels


def jaccard(a: str, b: str) -> float:
    x, y = set(normalise_text(a).split()), set(normalise_text(b).split())
    return len(x & y) / len(x | y) if x | y else 0.0


def brute_force_families(queries: dict[str, Query], qrels: Qrels, threshold: float) -> set[frozenset]:
    """O(n^2) reference: components of the 'shares a relevant doc or near-duplicate' graph."""
    ids = sorted(queries)
    parent = {q: q for q in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in itertools.combinations(ids, 2):
        rel_a = {d for d, r in qrels.get(a, {}).items() if r > 0}
        rel_b = {d for d, r in qrels.get(b, {}).items() if r > 0}
        ta, tb = normalise_text(queries[a].text), normalise_text(queries[b].text)
        dup = ta and tb and (ta == tb or jaccard(ta, tb) >= threshold)
        if rel_a & rel_b or dup:
            parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for q in ids:
        groups.setdefault(find(q), set()).add(q)
    return {frozenset(g) for g in groups.values()}


def as_groups(families: dict[str, str]) -> set[frozenset]:
    groups: dict[str, set[str]] = {}
    for qid, fam in families.items():
        groups.setdefault(fam, set()).add(qid)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_families_match_brute_force(seed: int, threshold: float) -> None:
    queries, qrels = synthetic(seed, n=150)
    # extra partial overlaps so the Jaccard threshold matters
    rng = random.Random(seed)
    for i in range(150, 190):
        base = queries[f"q{rng.randrange(150):04d}"].text.split()
        words = [*base[:-1], rng.choice(WORDS)]
        queries[f"q{i:04d}"] = Query(f"q{i:04d}", " ".join(words))
    got = as_groups(derive_families(queries, qrels, overlap_threshold=threshold))
    assert got == brute_force_families(queries, qrels, threshold)


@pytest.mark.parametrize("seed", [3, 4, 5, 6, 7])
@pytest.mark.parametrize("split_seed", [13, 99])
def test_no_family_crosses_splits(seed: int, split_seed: int) -> None:
    queries, qrels = synthetic(seed)
    families = derive_families(queries, qrels)
    split_of = split_queries(families, seed=split_seed)
    assert set(split_of) == set(queries)
    assert check_leakage(split_of, families) == []
    # the properties the families stand for hold on the split itself
    doc_split: dict[str, str] = {}
    for qid, docs in qrels.items():
        for doc, rel in docs.items():
            if rel > 0:
                assert doc_split.setdefault(doc, split_of[qid]) == split_of[qid]
    by_text: dict[str, str] = {}
    for qid, query in queries.items():
        key = normalise_text(query.text)
        assert by_text.setdefault(key, split_of[qid]) == split_of[qid]
    assert check_qrels_leakage(split_qrels(qrels, split_of), queries) == []


def test_same_seed_same_split_and_seed_matters() -> None:
    queries, qrels = synthetic(8)
    families = derive_families(queries, qrels)
    first = split_queries(families, seed=13)
    assert split_queries(dict(reversed(families.items())), seed=13) == first
    assert split_queries(families, seed=14) != first


def test_explicit_family_respected_and_wins() -> None:
    queries = {
        "a": Query("a", "how do I reset my password", {"family": "accounts"}),
        "b": Query("b", "something else entirely here", {"family": "accounts"}),
        # same text and same relevant doc as "a", but an explicit other family: it wins
        "c": Query("c", "How do I reset my password?", {"family": "other"}),
        "d": Query("d", "unlabelled query about shipping costs"),
    }
    qrels = {"a": {"d1": 1}, "c": {"d1": 1}, "d": {"d1": 1}}
    families = derive_families(queries, qrels)
    assert families["a"] == families["b"] == "accounts"
    assert families["c"] == "other"
    assert families["d"] == "auto:d"
    split_of = split_queries(families, seed=1)
    assert split_of["a"] == split_of["b"]


def test_derived_name_never_clashes_with_explicit() -> None:
    queries = {"x": Query("x", "alpha beta gamma", {"family": "auto:y"}), "y": Query("y", "delta")}
    families = derive_families(queries, {})
    assert families["x"] != families["y"]


def test_near_duplicates_merged() -> None:
    queries = {
        "1": Query("1", "What is the capital of France?"),
        "2": Query("2", "what   is the capital of france"),
        "3": Query("3", "capital of France: what is the?"),  # same token set
        "4": Query("4", "what is the capital city of france"),  # Jaccard 6/7
        "5": Query("5", "what is the population of spain"),
        "6": Query("6", "?!"),  # empty after normalisation: not a duplicate of anything
        "7": Query("7", "..."),
    }
    families = derive_families(queries, {})
    assert families["1"] == families["2"] == families["3"] == families["4"]
    assert len({families["1"], families["5"], families["6"], families["7"]}) == 4
    strict = derive_families(queries, {}, overlap_threshold=1.0)
    assert strict["1"] == strict["3"] != strict["4"]


def test_shared_relevant_doc_merged_but_not_zero_relevance() -> None:
    queries = {q: Query(q, f"unrelated text number {q}") for q in ("a", "b", "c", "d")}
    qrels = {"a": {"d1": 1}, "b": {"d1": 2, "d2": 1}, "c": {"d2": 1}, "d": {"d1": 0}}
    families = derive_families(queries, qrels)
    assert families["a"] == families["b"] == families["c"]
    assert families["d"] != families["a"]


def test_bad_threshold_and_ratios() -> None:
    with pytest.raises(ValueError):
        derive_families({}, {}, overlap_threshold=0.0)
    with pytest.raises(ValueError):
        split_queries({"a": "f"}, ratios=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError):
        split_queries({"a": "f"}, ratios=(0.5, -0.1, 0.6))


def test_ratios_roughly_respected() -> None:
    rng = random.Random(0)
    families = {f"q{i}": f"f{rng.randrange(1500)}" for i in range(6000)}
    split_of = split_queries(families, ratios=(0.7, 0.1, 0.2), seed=13)
    counts = {name: list(split_of.values()).count(name) for name in ("train", "dev", "test")}
    assert abs(counts["train"] / 6000 - 0.7) < 0.02
    assert abs(counts["dev"] / 6000 - 0.1) < 0.02
    assert abs(counts["test"] / 6000 - 0.2) < 0.02
    # a zero share leaves its split empty
    no_dev = split_queries(families, ratios=(0.8, 0.0, 0.2))
    assert "dev" not in set(no_dev.values())


def test_split_qrels_partitions() -> None:
    qrels = {"a": {"d1": 1}, "b": {"d2": 1}, "c": {"d3": 1}}
    parts = split_qrels(qrels, {"a": "train", "b": "test"})
    assert parts == {"train": {"a": {"d1": 1}}, "dev": {}, "test": {"b": {"d2": 1}}}
    parts["train"]["a"]["d9"] = 1
    assert qrels["a"] == {"d1": 1}


def test_leakage_check_catches_planted_leak() -> None:
    queries, qrels = synthetic(9)
    families = derive_families(queries, qrels)
    split_of = split_queries(families)
    assert check_leakage(split_of, families) == []
    # plant: move one query of a multi-query family to another split
    members: dict[str, list[str]] = {}
    for qid, fam in families.items():
        members.setdefault(fam, []).append(qid)
    fam, qids = next((f, q) for f, q in sorted(members.items()) if len(q) > 1)
    leaky = dict(split_of)
    leaky[qids[0]] = "test" if split_of[qids[0]] != "test" else "train"
    leaks = check_leakage(leaky, families)
    assert leaks == [Leak(family=fam, splits=sorted({leaky[q] for q in qids}), query_ids=sorted(qids))]


def test_qrels_leakage_on_given_files() -> None:
    queries = {
        "t1": Query("t1", "how to bake sourdough bread"),
        "t2": Query("t2", "best hiking boots for winter"),
        "e1": Query("e1", "How to bake sourdough bread?"),  # paraphrase of t1
        "e2": Query("e2", "tax rules for freelancers"),
        "e3": Query("e3", "completely different question"),
    }
    train = {"t1": {"d1": 1}, "t2": {"d2": 1}}
    test = {"e1": {"d7": 1}, "e2": {"d2": 1}, "e3": {"d9": 1}}
    leaks = check_qrels_leakage({"train": train, "test": test}, queries)
    assert [leak.query_ids for leak in leaks] == [["e1", "t1"], ["e2", "t2"]]
    assert all(leak.splits == ["test", "train"] for leak in leaks)
    # the same query id judged in two splits is a leak; unknown ids are fine
    leaks = check_qrels_leakage({"train": {"zz": {"a": 1}}, "test": {"zz": {"b": 1}}}, {})
    assert [leak.query_ids for leak in leaks] == [["zz"]]
    assert check_qrels_leakage({"train": train, "test": {"e3": {"d9": 1}}}, queries) == []
