"""Category hierarchy: paths, category-level matching, level routing, per-level fusion and slices."""

import pytest

from domainfit.core.types import Document, Query
from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.similarity import level_labels
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.hierarchy import (
    CategoryTree,
    HierarchyRetriever,
    category_path,
    fuse_hierarchy,
    levels_from_qrels,
    route_levels,
    tune_hierarchy,
)
from domainfit.retrieval.ranking import ranked_ids


def doc(did: str, path, text: str = "x") -> Document:
    return Document(id=did, text=text, metadata={} if path is None else {"category": path})


CORPUS = {
    "h1": doc("h1", "Electronics > Audio > Headphones", "Auralis QX-50 headphones with noise cancelling."),
    "h2": doc("h2", "Electronics > Audio > Headphones", "Veltro M2 headphones, foldable."),
    "s1": doc("s1", ["Electronics", "Audio", "Speakers"], "Kestrel B7 bluetooth speaker."),
    "k1": doc("k1", "Home > Kitchen > Blenders", "Nimbus J3 blender for smoothies."),
    "k2": doc("k2", "Home > Kitchen > Coffee machines", "Orvane C9 espresso machine with a steam wand."),
    "n1": doc("n1", None, "Release notes for the mobile app."),
}


def test_category_path_from_string_or_list():
    assert category_path(CORPUS["h1"], "category") == ("Electronics", "Audio", "Headphones")
    assert category_path(CORPUS["s1"], "category") == ("Electronics", "Audio", "Speakers")
    assert category_path(doc("x", "A / B", "t"), "category", "/") == ("A", "B")
    assert category_path(CORPUS["n1"], "category") == ()
    with pytest.raises(ValueError, match="expected a string"):
        category_path(doc("x", 3), "category")


def test_tree_nodes_and_documents_under_each_node():
    tree = CategoryTree(CORPUS, "category")
    assert ("Electronics",) in tree.nodes and ("Electronics", "Audio", "Headphones") in tree.nodes
    assert len(tree.nodes) == 8  # 2 top + 2 middle + 4 leaves
    assert tree.docs_of[("Electronics", "Audio")] == ["h1", "h2", "s1"]
    assert tree.leaf_of("n1") is None and "n1" not in tree.doc_paths


def test_levels_from_qrels_coarse_when_relevant_documents_span_several_leaves():
    tree = CategoryTree(CORPUS, "category")
    qrels = {"audio": {"h1": 1, "s1": 1}, "one": {"h1": 1}, "same-leaf": {"h1": 1, "h2": 1}, "zero": {"s1": 0}}
    assert levels_from_qrels(qrels, tree) == {"audio": "coarse", "one": "fine", "same-leaf": "fine", "zero": "fine"}
    queries = {q: Query(id=q, text=q) for q in qrels}
    queries["same-leaf"].metadata["level"] = "Coarse"  # metadata wins over inference
    labels = level_labels(queries, qrels, tree, "level")
    assert labels["same-leaf"] == "coarse" and labels["audio"] == "coarse" and labels["one"] == "fine"


def test_route_levels_metadata_first_then_scores():
    queries = {
        "q1": Query(id="q1", text="a", metadata={"level": "fine"}),
        "q2": Query(id="q2", text="b"),
        "q3": Query(id="q3", text="c"),
    }
    item = {"q1": {"d": 0.2}, "q2": {"d": 0.3}, "q3": {"d": 0.9}}
    best_node = {"q1": 0.8, "q2": 0.6, "q3": 0.5}
    assert route_levels(queries, item, best_node) == {"q1": "fine", "q2": "coarse", "q3": "fine"}


ITEM = {"coarse": {"h1": 0.9, "k1": 0.8, "s1": 0.3}, "fine": {"h1": 0.9, "h2": 0.5, "s1": 0.4}}
CATEGORY = {"coarse": {"h1": 0.7, "h2": 0.7, "s1": 0.7, "k1": 0.1}, "fine": {"h1": 0.6, "h2": 0.6, "s1": 0.2}}
LEVELS = {"coarse": "coarse", "fine": "fine"}


def test_fusion_uses_the_category_weight_of_the_query_level():
    fused = fuse_hierarchy(ITEM, CATEGORY, LEVELS, {"coarse": 1.0, "fine": 0.0})
    # coarse query matched at category level: every audio document above the kitchen one
    assert set(ranked_ids(fused["coarse"])[:3]) == {"h1", "h2", "s1"} and ranked_ids(fused["coarse"])[-1] == "k1"
    # fine query matched at item level: the dense ranking is unchanged
    assert ranked_ids(fused["fine"]) == ranked_ids(ITEM["fine"])
    half = fuse_hierarchy(ITEM, CATEGORY, LEVELS, {"coarse": 0.5, "fine": 0.5})["coarse"]
    # min-max: item h1=1, k1=5/6, s1=0; category h1=h2=s1=1, k1=0 -> 0.5*item + 0.5*category
    assert half == pytest.approx({"h1": 1.0, "k1": 5 / 12, "s1": 0.5, "h2": 0.5})
    cut = fuse_hierarchy(ITEM, CATEGORY, LEVELS, {"coarse": 0.5}, depth=2)["coarse"]
    assert len(cut) == 2 and ranked_ids(cut)[0] == "h1"


def test_tuning_picks_a_weight_per_level():
    qrels = {"coarse": {"h1": 1, "h2": 1, "s1": 1}, "fine": {"h2": 1}}

    def ndcg(qrels, run):
        return evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]

    tuned = tune_hierarchy(ITEM, CATEGORY, LEVELS, qrels, ndcg, grid=[0.0, 0.5, 1.0])
    assert tuned.weights["coarse"] > 0.0
    assert tuned.dev_queries == {"coarse": 1, "fine": 1}
    assert set(tuned.scores) == {"all", "coarse", "fine"}


def test_category_level_matching_with_real_embeddings(minilm):
    retriever = HierarchyRetriever(DenseRetriever(minilm), "category")
    tree = retriever.index(CORPUS)
    assert retriever.get_config_dict()["nodes"] == len(tree.nodes) == 8
    run = retriever.search({"q": "kitchen appliances", "r": "audio equipment"}, k=10)
    assert "n1" not in run["q"]  # no path, no category score
    assert set(ranked_ids(run["q"])[:2]) == {"k1", "k2"}
    assert set(ranked_ids(run["r"])[:3]) == {"h1", "h2", "s1"}
    # documents of one leaf inherit one score
    assert run["r"]["h1"] == run["r"]["h2"]
    best = retriever.best_node_scores({"q": "kitchen appliances"})
    assert best["q"] == pytest.approx(max(run["q"].values()))
