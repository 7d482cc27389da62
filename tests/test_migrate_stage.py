"""``domainfit migrate`` end to end through the command line, on real LanceDB folders and real models.

The old model is the packaged MiniLM cut to two transformer layers (saved as
a sentence-transformers folder), the new one the packaged MiniLM itself. The
index is built with the old model; then plan, backfill, bridge, compare,
promote and rollback run as a user runs them, each re-run once (a no-op),
with real searches through the index before the promotion, after it and
after the rollback: the rollback gives back exactly the same ids and scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import build_mini_dataset, save_shallow_copy
from domainfit.cli import app
from domainfit.data.beir import load_beir, write_beir
from domainfit.index.backend import SearchQuery, open_index, read_pointer
from domainfit.index.versions import read_versions
from domainfit.monitor.baseline import canary_fingerprint, read_baseline

runner = CliRunner(env={"NO_COLOR": "1"})

#: Small and fast: a 64-token window, batches of 8, a short probe, two bridge candidates per kind.
CONFIG = """
[eval]
max_seq_length = 64
batch_size = 16

[index]
batch_size = 8

[cost]
probe_documents = 8

[migrate]
max_seq_length = 64
bridge_ranks = [16, 32]
bridge_ridge = [0.1]
min_lift = {min_lift}
max_canary_churn = 1.0
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm) -> dict[str, Path]:
    """A mini BEIR folder, the 2-layer old model, the configs, and a workspace indexed with the old model."""
    root = tmp_path_factory.mktemp("migrate")
    data = write_beir(build_mini_dataset(), root / "mini")
    save_shallow_copy(minilm, root / "old-model")
    go = root / "go.toml"
    go.write_text(CONFIG.format(min_lift=-1.0))
    strict = root / "strict.toml"
    strict.write_text(CONFIG.format(min_lift=1.0))
    ws = root / "ws"
    built = runner.invoke(app, ["index", str(data), "-w", str(ws), "-c", str(go), "--model", str(root / "old-model"),
                                "--quiet"])  # fmt: skip
    assert built.exit_code == 0, built.output
    return {"data": data, "ws": ws, "go": go, "strict": strict, "old": root / "old-model", "root": root}


def migrate(setup: dict[str, Path], step: str, *extra: str, config: str = "go") -> Any:
    """Run one ``domainfit migrate`` step with ``--json``; return the CLI result."""
    args = ["migrate", step, str(setup["data"]), "-w", str(setup["ws"]), "-c", str(setup[config]), "--json"]
    return runner.invoke(app, [*args, "--to", "sentence-transformers/all-MiniLM-L6-v2", *extra])


def searches(ws: Path) -> dict[str, list[tuple[str, float]]]:
    """Every benchmark test query searched through production, as the service searches: ids and scores."""
    from domainfit.core.models import load_bi_encoder
    from domainfit.serve.encoder import SentenceTransformerEncoder

    dataset = load_beir(ws.parent / "mini")
    store, pointer = open_index(ws / "index")
    try:
        encoder = SentenceTransformerEncoder(
            load_bi_encoder(pointer.model, max_seq_length=pointer.max_seq_length),
            pointer.model,
            query_prompt_name=pointer.query_prompt_name,
        )
        found = {}
        for qid in dataset.qrels["test"]:
            vector = encoder.encode([dataset.queries[qid].text])[0].tolist()
            hits = store.search(SearchQuery(vector=vector, k=10, version=pointer.version))
            found[qid] = [(h.id, h.score) for h in hits]
        return found
    finally:
        store.close()


def test_a_migration_from_plan_to_rollback(setup):
    ws, home = setup["ws"], setup["ws"] / "index"
    pointer_before = (home / "serving.json").read_bytes()
    old_version = read_pointer(home).version
    assert read_versions(home)[old_version].model == str(setup["old"].resolve())

    plan = migrate(setup, "plan")
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.stdout)
    assert planned["numbers"]["to_embed"] == planned["numbers"]["documents"] == 30
    assert planned["numbers"]["estimated_seconds"] > 0 and planned["numbers"]["bridge_possible"] is True
    assert planned["numbers"]["new_vector_bytes"] == 30 * 384 * 4
    assert json.loads(migrate(setup, "plan").stdout)["up_to_date"] is True

    backfill = migrate(setup, "backfill")
    assert backfill.exit_code == 0, backfill.output
    filled = json.loads(backfill.stdout)
    new_version = filled["to_version"]
    assert filled["numbers"]["embedded"] == 30 and new_version != old_version
    assert (home / "serving.json").read_bytes() == pointer_before  # production did not move
    assert set(read_versions(home)) == {old_version, new_version}
    assert json.loads(migrate(setup, "backfill").stdout)["up_to_date"] is True
    replanned = json.loads(migrate(setup, "plan").stdout)  # the index changed: planned again, nothing left
    assert replanned["up_to_date"] is False and replanned["numbers"]["to_embed"] == 0

    bridge = migrate(setup, "bridge")
    assert bridge.exit_code in (0, 1), bridge.output
    bridged = json.loads(bridge.stdout)
    assert {"procrustes_retention", "affine_retention"} <= set(bridged["numbers"])
    assert (ws / "migrate" / "bridge" / "bridge.npz").is_file()
    assert bridge.exit_code == (0 if bridged["go"] else 1)

    before = searches(ws)
    refused = migrate(setup, "compare", config="strict")  # a lift of 1.0 is impossible: no-go, exit 1
    assert refused.exit_code == 1 and json.loads(refused.stdout)["go"] is False
    blocked = runner.invoke(app, ["migrate", "promote", "-w", str(ws), "-c", str(setup["strict"])])
    assert blocked.exit_code == 1 and "no-go" in blocked.output and "Traceback" not in blocked.output
    assert (home / "serving.json").read_bytes() == pointer_before

    compare = migrate(setup, "compare")
    assert compare.exit_code == 0, compare.output
    compared = json.loads(compare.stdout)
    assert compared["go"] is True and compared["numbers"]["queries"] == 8
    assert json.loads(migrate(setup, "compare").stdout)["up_to_date"] is True
    report = json.loads((ws / "migrate" / "compare" / "compare.json").read_text())
    assert report["canary_agreement"]["n_queries"] == 8

    promote = runner.invoke(app, ["migrate", "promote", "-w", str(ws), "-c", str(setup["go"]), "--json"])
    assert promote.exit_code == 0, promote.output
    pointer = read_pointer(home)
    assert pointer.version == new_version and pointer.tag.startswith("prod-")
    canaries = json.loads((ws / "migrate" / "compare" / "canaries.json").read_text())
    fingerprint = canary_fingerprint(canaries["queries"], canaries["qrels"])
    baseline = read_baseline(home, fingerprint)  # the baseline monitor compares against
    assert baseline is not None and baseline.version == new_version
    assert set(baseline.metrics) == {"recall@10", "mrr@10"}
    after = searches(ws)
    new_run = _trec(ws / "migrate" / "compare" / "runs" / "new.trec")
    assert all({d for d, _ in after[q]} == set(new_run[q][:10]) for q in after)  # what compare measured
    again = runner.invoke(app, ["migrate", "promote", "-w", str(ws), "-c", str(setup["go"]), "--json"])
    assert json.loads(again.stdout)["up_to_date"] is True
    promoted_bytes = (home / "serving.json").read_bytes()
    index_args = ["index", str(setup["data"]), "-w", str(ws), "-c", str(setup["go"]), "--model", str(setup["old"]),
                  "--quiet"]  # fmt: skip
    for extra in ([], ["--force"]):  # up to date, then rebuilt: neither moves production off the promoted version
        rerun = runner.invoke(app, [*index_args, *extra])
        assert rerun.exit_code == 0, rerun.output
        assert (home / "serving.json").read_bytes() == promoted_bytes
    kept = json.loads((home / "build" / "result.json").read_text())
    assert kept["served"] is False and any("migrate promote" in note for note in kept["notes"])

    from domainfit.cli.serve import load_encoders

    stored = {v: r for v, r in read_versions(home).items()}
    encoders = load_encoders(pointer, {}, load_beir_text(), stored)  # no --version-model: the record says
    assert set(encoders) == {old_version, new_version}
    assert encoders[old_version].name == str(setup["old"].resolve())

    rollback = runner.invoke(app, ["migrate", "rollback", "-w", str(ws), "-c", str(setup["go"]), "--json"])
    assert rollback.exit_code == 0, rollback.output
    assert (home / "serving.json").read_bytes() == pointer_before
    assert searches(ws) == before  # exactly the same ids and scores
    rolled = read_baseline(home, fingerprint)
    assert rolled is not None and rolled.version == old_version
    again = runner.invoke(app, ["migrate", "rollback", "-w", str(ws), "-c", str(setup["go"]), "--json"])
    assert json.loads(again.stdout)["up_to_date"] is True

    log = [json.loads(line) for line in (ws / "migrate" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == ["plan", "backfill", "plan", "bridge", "compare", "compare", "promote",
                                        "rollback"]  # fmt: skip
    assert all(e["time"] and e["numbers"] for e in log)

    summary = (ws / "migrate" / "summary" / "migrate.md").read_text()
    assert "# Model migration" in summary and "rollback" in summary and "Last comparison" in summary
    made = runner.invoke(app, ["report", "-w", str(ws)])
    assert made.exit_code == 0, made.output
    assert "Model migration" in (ws / "report" / "report.md").read_text()


def load_beir_text() -> Any:
    """The default ``[text]`` settings."""
    from domainfit.text.config import DEFAULT_TEXT

    return DEFAULT_TEXT


def _trec(path: Path) -> dict[str, list[str]]:
    """A TREC run file's documents per query, in rank order."""
    from domainfit.evaluation.trec import read_trec_run
    from domainfit.retrieval.ranking import ranked_ids

    return {q: ranked_ids(r) for q, r in read_trec_run(path).items()}


def test_bad_input_is_one_line_and_exit_2(setup, tmp_path):
    bogus = runner.invoke(app, ["migrate", "bogus", str(setup["data"]), "-w", str(setup["ws"])])
    assert bogus.exit_code == 2 and "unknown migrate step 'bogus'" in bogus.output
    empty = tmp_path / "empty-ws"
    none = runner.invoke(app, ["migrate", "plan", str(setup["data"]), "-w", str(empty)])
    assert none.exit_code == 2 and "no index" in none.output and "Traceback" not in none.output
    early = runner.invoke(app, ["migrate", "rollback", "-w", str(empty)])
    assert early.exit_code == 2 and "serving.json" in early.output
    canaries = tmp_path / "canaries.txt"
    canaries.write_text("# canaries\nq001\nnot-a-query\n")
    bad = migrate(setup, "compare", "--canaries", str(canaries))
    assert bad.exit_code == 2, bad.output
    assert f"{canaries}:3: query_id: 'not-a-query' is not a query of queries.jsonl" in bad.output
    missing = migrate(setup, "plan", "--to", str(tmp_path / "no-such-model"))
    assert missing.exit_code == 2 and "Traceback" not in missing.output
