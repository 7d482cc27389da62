"""The migration plan, the migration log and the index's record of which model made each version (no model needed)."""

from __future__ import annotations

import json

import pytest

from domainfit.compress.config import CostConfig
from domainfit.compress.cost import baseline_cost
from domainfit.index.types import DocState, IndexDocument, IndexFailure
from domainfit.index.versions import VersionRecord, read_versions, record_version, version_models
from domainfit.migrate.log import append_entry, read_log
from domainfit.migrate.plan import MigrationPlan, VersionFacts, bridge_feasibility, plan_migration

DOCS = [IndexDocument(f"d{i}", f"text {i}", f"title {i}") for i in range(10)]
OLD = VersionFacts("old_v", "old-model", 384)
NEW = VersionFacts("new_v", "new-model", 768)


def test_the_plan_embeds_what_lacks_the_new_vector_or_changed():
    states = {d.id: DocState(d.content_hash, i < 4) for i, d in enumerate(DOCS)}  # 4 already embedded
    states["d5"] = DocState("stale", True)  # changed since the index was written
    states["gone"] = DocState("x", False)  # left the corpus
    plan = plan_migration(states, DOCS, OLD, NEW, docs_per_second=2.0, throughput_source="test",
                          cost=CostConfig(), paired_texts=50)  # fmt: skip
    assert (plan.to_embed, plan.already_embedded, plan.to_write, plan.to_delete) == (6, 4, 1, 1)
    expected = baseline_cost(6, CostConfig(), 768, 2.0)
    assert plan.estimated_seconds == pytest.approx(expected.reembed_wall_hours * 3600) == pytest.approx(3.0)
    assert plan.new_vector_bytes == 10 * 768 * 4
    assert plan.reembed_usd == pytest.approx(expected.reembed_usd_once)
    assert plan.bridge.possible and "768 -> 384" in plan.bridge.reason
    assert MigrationPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    with pytest.raises(ValueError, match="docs_per_second"):
        plan_migration(states, DOCS, OLD, NEW, docs_per_second=0.0, throughput_source="", cost=CostConfig(),
                       paired_texts=50)  # fmt: skip


def test_documents_in_the_embedding_cache_are_read_not_counted_as_encoding_time():
    states = {d.id: DocState(d.content_hash, False) for d in DOCS}
    cached = {"d1", "d3", "d5"}
    plan = plan_migration(states, DOCS, OLD, NEW, docs_per_second=2.0, throughput_source="test", cost=CostConfig(),
                          paired_texts=50, in_cache=lambda todo: sum(d.id in cached for d in todo))  # fmt: skip
    assert (plan.to_embed, plan.in_cache) == (10, 3)
    assert plan.estimated_seconds == pytest.approx(3.5)  # 7 documents encoded at 2 a second
    assert plan.new_vector_bytes == 10 * 768 * 4  # every new vector is still written
    assert any("3 of the 10 documents to embed are in the embedding cache" in n for n in plan.notes)
    assert MigrationPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    old_record = {k: v for k, v in plan.to_json().items() if k != "in_cache"}  # a plan written before the field
    assert MigrationPlan.from_json(old_record).in_cache == 0


def test_a_bridge_needs_old_vectors_and_enough_texts():
    assert not bridge_feasibility(VersionFacts("b", "m", 384, "bm25"), NEW, 500).possible
    assert not bridge_feasibility(OLD, NEW, 5).possible
    same = bridge_feasibility(OLD, VersionFacts("n", "m2", 384), 100)
    assert same.possible and same.kinds == ("procrustes", "affine") and "same width" in same.reason
    assert "ridge" in same.reason  # fewer texts than dimensions


def test_the_log_is_appended_and_a_cut_line_is_skipped(tmp_path):
    path = tmp_path / "migrate" / "log.jsonl"
    append_entry(path, "plan", from_version="a", to_version="b", summary="planned", numbers={"x": 1.5})
    append_entry(path, "compare", from_version="a", to_version="b", summary="go", numbers={"p": float("nan")})
    with path.open("a") as handle:
        handle.write('{"format_version": 1, "step": "promo')  # a crash mid-line
    entries = read_log(path)
    assert [e["step"] for e in entries] == ["plan", "compare"]
    assert entries[1]["numbers"] == {"p": None} and entries[0]["time"].endswith("Z")
    for line in path.read_text().splitlines()[:2]:
        json.loads(line)  # strict JSON: no NaN
    assert read_log(tmp_path / "none.jsonl") == []


def test_versions_json_records_each_version_and_refuses_a_damaged_file(tmp_path):
    assert read_versions(tmp_path) == {}
    record_version(tmp_path, VersionRecord("a", "/models/a", 384, 128, "query"))
    record_version(tmp_path, VersionRecord("b", "name/b", 768))
    record_version(tmp_path, VersionRecord("a", "/models/a2", 384))  # replaced whole
    assert version_models(tmp_path) == {"a": "/models/a2", "b": "name/b"}
    assert read_versions(tmp_path)["b"].dimension == 768
    (tmp_path / "versions.json").write_text('{"format": 9}')
    with pytest.raises(IndexFailure, match="format 9"):
        read_versions(tmp_path)
    (tmp_path / "versions.json").write_text("not json")
    with pytest.raises(IndexFailure, match="cannot read"):
        read_versions(tmp_path)
