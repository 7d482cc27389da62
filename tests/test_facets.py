"""Facet retrieval: per-field search, weighted fusion, weight sweep."""

import pytest

from domainfit.config import load_config
from domainfit.core.errors import InputError
from domainfit.core.types import Document
from domainfit.evaluation.metrics import evaluate
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.facets import (
    FacetRetriever,
    field_coverage,
    field_text,
    fuse_facets,
    sweep_facet_weights,
    weight_grid,
)
from domainfit.retrieval.ranking import ranked_ids

# q1 is answered by "a" through its title, q2 by "b" through its body
TITLE = {"q1": {"a": 0.9, "b": 0.1, "c": 0.5}, "q2": {"a": 0.6, "b": 0.2, "c": 0.4}}
BODY = {"q1": {"a": 0.2, "b": 0.8, "c": 0.5}, "q2": {"a": 0.1, "b": 0.9, "c": 0.3}}


def test_weights_change_the_ranking_as_specified():
    runs = {"title": TITLE, "text": BODY}
    assert ranked_ids(fuse_facets(runs, {"title": 1.0, "text": 0.0})["q1"]) == ["a", "c", "b"]
    assert ranked_ids(fuse_facets(runs, {"title": 0.0, "text": 1.0})["q1"]) == ["b", "c", "a"]
    # even weights: a = 0.5*1 + 0.5*0 = 0.5, b = 0.5*0 + 0.5*1 = 0.5, c = 0.5*0.5 + 0.5*0.5 = 0.5
    even = fuse_facets(runs, {"title": 0.5, "text": 0.5})["q1"]
    assert even == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.5})
    # 0.7 title / 0.3 body on min-max scores: a = 0.7, c = 0.35 + 0.15 = 0.5, b = 0.3
    mixed = fuse_facets(runs, {"title": 0.7, "text": 0.3})["q1"]
    assert mixed == pytest.approx({"a": 0.7, "c": 0.5, "b": 0.3})
    assert ranked_ids(mixed) == ["a", "c", "b"]


def test_a_document_missing_from_a_facet_scores_zero_there_and_depth_cuts():
    runs = {"title": {"q": {"a": 1.0, "b": 0.0}}, "attributes": {"q": {"c": 0.9, "b": 0.5}}}
    fused = fuse_facets(runs, {"title": 0.5, "attributes": 0.5})
    assert fused["q"] == pytest.approx({"a": 0.5, "b": 0.0, "c": 0.5})
    assert list(fuse_facets(runs, {"title": 0.5, "attributes": 0.5}, depth=1)["q"]) == ["c"]


def test_weight_grid_is_normalised_without_repeats_or_all_zero():
    grid = weight_grid(["title", "text"], [0.0, 0.5, 1.0])
    assert {tuple(w.values()) for w in grid} == {
        (0.0, 1.0),
        (1.0, 0.0),
        (0.5, 0.5),
        (0.333333, 0.666667),
        (0.666667, 0.333333),
    }
    assert all(sum(w.values()) == pytest.approx(1.0, abs=1e-5) for w in grid)


def test_sweep_picks_the_weights_that_win_on_dev():
    # "c" is second in both facets, so it tops every mix and only a one-hot weight ranks "a" or "b" first
    title = {q: {"a": 0.9, "b": 0.1, "c": 0.7} for q in ("q1", "q2")}
    body = {q: {"a": 0.1, "b": 0.9, "c": 0.7} for q in ("q1", "q2")}
    runs = {"title": title, "text": body}

    def ndcg(qrels, run):
        return evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]

    title_wins = sweep_facet_weights(runs, {"q1": {"a": 1}, "q2": {"a": 1}}, ndcg, grid=[0.0, 0.5, 1.0])
    assert title_wins.weights == {"title": 1.0, "text": 0.0}
    body_wins = sweep_facet_weights(runs, {"q1": {"b": 1}, "q2": {"b": 1}}, ndcg, grid=[0.0, 0.5, 1.0])
    assert body_wins.weights == {"title": 0.0, "text": 1.0}
    assert len(body_wins.scores) == 5 and body_wins.metric == "ndcg@10"


def test_field_text_renders_metadata():
    doc = Document(
        id="d",
        title="T",
        text="body",
        metadata={"attributes": {"colour": "red", "size": 3}, "tags": ["a", "b"], "year": 2024},
    )
    assert field_text(doc, "title") == "T" and field_text(doc, "text") == "body"
    assert field_text(doc, "attributes") == "colour: red; size: 3"
    assert field_text(doc, "tags") == "a, b" and field_text(doc, "year") == "2024"
    assert field_text(doc, "missing") == ""
    assert field_coverage({"d": doc}, ["title", "missing"]) == {"title": 1, "missing": 0}


def test_facet_retriever_with_real_embeddings(minilm):
    corpus = {
        "a": Document(id="a", title="Auralis QX-50 headphones", text="Comfortable over-ear headphones for travel."),
        "b": Document(
            id="b",
            title="Veltro M2 speaker",
            text="A speaker often compared with the Auralis QX-50 headphones.",
            metadata={"attributes": {"colour": "red"}},
        ),
    }
    retriever = FacetRetriever(DenseRetriever(minilm), ["title", "text", "attributes"])
    assert retriever.index(corpus) == {"title": 2, "text": 2, "attributes": 1}
    runs = retriever.search({"q": "Auralis QX-50"}, k=10)
    assert set(runs["attributes"]["q"]) == {"b"}  # only documents that have the field
    assert ranked_ids(fuse_facets(runs, {"title": 1.0})["q"])[0] == "a"
    assert ranked_ids(fuse_facets(runs, {"title": 1.0})["q"]) == ranked_ids(runs["title"]["q"])
    assert retriever.get_config_dict()["fields"] == ["title", "text", "attributes"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('fields = ["title", "text"]\nweights = [1.0]', "bench.similarity.facets"),
        ('fields = ["title", "title"]', "bench.similarity.facets.fields"),
        ("weights = [0.0, 0.0]", "bench.similarity.facets"),
        ("weights = [-1.0, 1.0]", "bench.similarity.facets"),
        ("colour = 1", "bench.similarity.facets.colour"),
    ],
)
def test_bad_facet_config_is_a_clear_error(tmp_path, body, key):
    path = tmp_path / "domainfit.toml"
    path.write_text(f"[bench.similarity.facets]\nenabled = true\n{body}\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.field == key or info.value.field.startswith(f"{key}.")  # the section, or its key


def test_facets_are_off_by_default():
    config = load_config(None)
    assert not config.bench.similarity.any_enabled()
