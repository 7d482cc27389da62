"""Filters: length, duplicates and near-duplicates, leakage, evaluation documents, round-trip consistency."""

from __future__ import annotations

import pytest

from conftest import build_mini_dataset
from domainfit.retrieval.dense import DenseRetriever
from domainfit.synth.base import SyntheticQuery
from domainfit.synth.filters import FILTERS, FilterSettings, apply_filters

CORPUS = build_mini_dataset().corpus
NO_ROUNDTRIP = FilterSettings(roundtrip="none")


def q(text, doc_id="d001", source="salient"):
    return SyntheticQuery(text, doc_id, source)


def test_exact_and_near_duplicates_are_dropped_and_counted():
    queries = [
        q("reset password link email account page now", "d002", "title"),
        q("Reset  password, link EMAIL account page now!", "d002", "cloze"),  # same normalised text
        q("reset password link email account page now please", "d003"),  # Jaccard 7/8 = 0.875 < 0.9: kept
        q("reset password link email account page now today again", "d002"),  # 7/9: kept
        q("a b c d e f g h i", "d004"),
        q("a b c d e f g h i j", "d004"),  # Jaccard 9/10 = 0.9: near-duplicate
    ]
    result = apply_filters(queries, CORPUS, NO_ROUNDTRIP)
    assert [x.text for x in result.kept] == [queries[0].text, queries[2].text, queries[3].text, queries[4].text]
    assert result.removed["duplicate"] == {"cloze": 1}
    assert result.removed["near_duplicate"] == {"salient": 1}
    assert set(result.removed) == set(FILTERS)
    assert result.examples["duplicate"][0]["why"].startswith("title query")


def test_click_pairs_of_one_query_with_different_documents_are_not_duplicates():
    queries = [q("invoice download", "d005", "clicks"), q("invoice download", "d006", "clicks")]
    queries.append(q("invoice download", "d005", "clicks"))
    queries.append(q("invoice download", "d007", "salient"))
    result = apply_filters(queries, CORPUS, NO_ROUNDTRIP)
    assert [(x.doc_id, x.source) for x in result.kept] == [("d005", "clicks"), ("d006", "clicks")]
    assert result.total("duplicate") == 2


def test_length_limits_count_characters_and_normalised_words():
    settings = FilterSettings(roundtrip="none", min_chars=4, max_chars=40, min_words=2, max_words=4)
    queries = [q("ok"), q("single"), q("two words"), q("one two three four five"), q("x" * 41 + " y")]
    result = apply_filters(queries, CORPUS, settings)
    assert [x.text for x in result.kept] == ["two words"]
    assert result.removed["length"] == {"salient": 4}


def test_leakage_drops_held_out_queries_and_near_duplicates_and_counts_them():
    held_out = {"q013": ("test", "vpc peering routes"), "q014": ("test", "load balancer health check")}
    queries = [
        q("VPC peering routes", "d001", "title"),  # the planted test query (normalised equal)
        q("the load balancer health check", "d002", "llm"),  # Jaccard 4/5 = 0.8: near-duplicate
        q("load balancer", "d002", "salient"),  # 2/4: not a leak
    ]
    result = apply_filters(queries, CORPUS, NO_ROUNDTRIP, held_out=held_out)
    assert [x.text for x in result.kept] == ["load balancer"]
    assert result.removed["leakage"] == {"title": 1, "llm": 1}
    whys = [e["why"] for e in result.examples["leakage"]]
    assert whys == ["same text as test query q013", "token Jaccard 0.80 with test query q014"]


def test_eval_documents_never_become_positives():
    result = apply_filters([q("peering", "d013"), q("tokens", "d001")], CORPUS, NO_ROUNDTRIP, eval_documents={"d013"})
    assert [x.doc_id for x in result.kept] == ["d001"] and result.total("eval_document") == 1


def test_bm25_round_trip_drops_a_query_that_cannot_find_its_document():
    queries = [
        q("ERR_AUTH_702 token expired", "d001", "title"),
        q("invoice pdf download", "d005", "salient"),
        q("colour of the dashboard theme", "d001", "llm"),  # finds the release notes, never d001
        q("zebra giraffe", "d002", "cloze"),  # finds nothing
    ]
    result = apply_filters(queries, CORPUS, FilterSettings(roundtrip="bm25", roundtrip_k=5))
    assert [x.text for x in result.kept] == [queries[0].text, queries[1].text]
    assert result.removed["roundtrip"] == {"llm": 1, "cloze": 1}
    exempt = apply_filters(queries, CORPUS, FilterSettings(roundtrip="bm25", roundtrip_exempt=("llm", "cloze")))
    assert len(exempt.kept) == 4 and exempt.total("roundtrip") == 0


@pytest.fixture()
def dense(minilm, tmp_path):
    return lambda: DenseRetriever(minilm, cache_dir=tmp_path / "embeddings")


def test_dense_and_either_round_trips_keep_paraphrases_bm25_misses(dense, tmp_path):
    queries = [q("how do I get my money back", "d007", "llm"), q("zebra giraffe", "d001", "llm")]
    bm25 = apply_filters(queries, CORPUS, FilterSettings(roundtrip="bm25", roundtrip_k=3))
    assert bm25.kept == []
    either = apply_filters(queries, CORPUS, FilterSettings(roundtrip="either", roundtrip_k=3), dense=dense)
    assert [x.text for x in either.kept] == ["how do I get my money back"] and either.total("roundtrip") == 1
    only_dense = apply_filters(queries, CORPUS, FilterSettings(roundtrip="dense", roundtrip_k=3), dense=dense)
    assert [x.text for x in only_dense.kept] == ["how do I get my money back"]
    assert any((tmp_path / "embeddings").rglob("*.npy"))  # the workspace embedding cache was used
