"""The bench stage with facets, time decay and hierarchy switched on, on a tiny structured catalogue."""

import json

import pytest

from domainfit.config import BenchConfig
from domainfit.core.errors import InputError
from domainfit.core.workspace import Workspace
from domainfit.data.beir import write_beir
from domainfit.data.structured_demo import build_structured_demo
from domainfit.stages.bench import run_bench
from domainfit.stages.registry import build_report


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    data = build_structured_demo(products_per_leaf=3, series_per_leaf=1, revisions=2, leaves=2)
    return write_beir(data, tmp_path_factory.mktemp("catalogue") / "beir")


def similarity_config(**overrides) -> BenchConfig:
    similarity = {
        "facets": {"enabled": True, "fields": ["title", "text", "attributes"], "grid": [0.0, 1.0]},
        "time": {"enabled": True, "half_life_days": 365, "reference_date": "2024-06-01"},
        "hierarchy": {"enabled": True, "grid": [0.0, 1.0]},
    }
    for part, values in overrides.items():
        similarity[part].update(values)
    return BenchConfig.model_validate({"hybrid": False, "similarity": similarity})


def test_structured_demo_is_deterministic_and_has_every_query_kind():
    a, b = build_structured_demo(), build_structured_demo()
    assert [d.title for d in a.corpus.values()] == [d.title for d in b.corpus.values()]
    kinds = {q.metadata["kind"] for q in a.queries.values()}
    assert kinds == {"title", "attribute", "latest", "coarse"}
    doc = a.corpus["p001"]
    assert {"attributes", "date", "category"} <= set(doc.metadata)
    assert doc.metadata["category"].count(">") == 2
    # the answer to a "latest" query is the newest revision of its series
    for qid, rel in a.qrels["test"].items():
        if a.queries[qid].metadata["kind"] == "latest":
            (answer,) = rel
            title = a.corpus[answer].title
            series = [d for d in a.corpus.values() if d.title == title]
            assert a.corpus[answer].metadata["date"] == max(d.metadata["date"] for d in series)


def test_bench_adds_similarity_systems_verdicts_and_level_slices(tmp_path, catalogue):
    workspace = Workspace(tmp_path / "ws")
    result = run_bench(catalogue, workspace, similarity_config())
    names = [s.name for s in result.systems]
    assert names == ["bm25", "dense", "dense-facets", "dense-time", "dense-hierarchy"]
    assert set(result.similarity) == {"dense-facets", "dense-time", "dense-hierarchy"}
    for entry in result.similarity.values():
        assert entry["baseline"] == "dense" and entry["split"] == "test"
        assert entry["helped"] == (entry["verdict"] == "helped")
        assert set(entry["per_level"]) == {"coarse", "fine"}
    facets = result.hybrid_tuning["dense-facets"]
    assert facets["source"] == "sweep on dev" and set(facets["weights"]) == {"title", "text", "attributes"}
    assert set(result.hybrid_tuning["dense-hierarchy"]["weights"]) == {"coarse", "fine"}
    assert result.hybrid_tuning["dense-time"]["reference"] == "2024-06-01"
    level_rows = [row for row in result.slices["dense-hierarchy"] if row["slice"] == "level"]
    assert {row["value"] for row in level_rows} == {"coarse", "fine"}
    out = tmp_path / "ws" / "bench"
    summary = (out / "summary.md").read_text()
    assert "## Domain-specific similarity vs plain dense" in summary
    assert "dense-facets vs dense on test (ndcg@10)" in summary and "per level: coarse" in summary
    assert json.loads((out / "metrics.json").read_text())["similarity"].keys() == result.similarity.keys()
    html, markdown = build_report(workspace)
    assert "Domain-specific similarity vs plain dense" in html.read_text()
    assert "dense-time vs dense" in markdown.read_text()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"facets": {"fields": ["title", "colour"]}}, "bench.similarity.facets.fields"),
        ({"time": {"date_field": "published"}}, "bench.similarity.time.date_field"),
        ({"hierarchy": {"path_field": "taxonomy"}}, "bench.similarity.hierarchy.path_field"),
    ],
)
def test_a_field_no_document_has_is_bad_input(tmp_path, catalogue, overrides, field):
    with pytest.raises(InputError) as info:
        run_bench(catalogue, Workspace(tmp_path / "ws"), similarity_config(**overrides))
    assert info.value.field == field and "corpus.jsonl" in str(info.value.path)
    assert not (tmp_path / "ws" / "bench" / "metrics.json").exists()


def test_a_bad_date_names_the_corpus_line_and_field(tmp_path, catalogue):
    import shutil

    data = tmp_path / "beir"
    shutil.copytree(catalogue, data)
    lines = (data / "corpus.jsonl").read_text().splitlines()
    record = json.loads(lines[4])
    record["date"] = "last tuesday"
    lines[4] = json.dumps(record)
    (data / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    config = similarity_config(facets={"enabled": False}, hierarchy={"enabled": False})
    with pytest.raises(InputError) as info:
        run_bench(data, Workspace(tmp_path / "ws"), config)
    assert (info.value.line, info.value.field) == (5, "date") and info.value.path.name == "corpus.jsonl"
    assert record["_id"] in str(info.value) and "ISO date" in str(info.value)
    assert not (tmp_path / "ws" / "bench" / "metrics.json").exists()
