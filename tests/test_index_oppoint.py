"""``domainfit index`` with ``[index] precision = "operating-point"``: the deployed index is compress's choice.

On a real BEIR folder with the packaged MiniLM: ``compress`` sweeps a small
grid and chooses an operating point; ``index`` stores the vectors at that point
(its own model version, the precision in the pointer and with the vectors), and
the benchmark queries searched through the index give the NDCG@10 compress
recorded for that configuration, to 1e-4. A re-run embeds nothing; an explicit
int8 precision lives beside it; asking for the operating point before compress
ran is exit 2 with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import build_mini_dataset
from domainfit.cli import app
from domainfit.compress.config import CompressConfig
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir, write_beir
from domainfit.evaluation.metrics import evaluate
from domainfit.index.backend import SearchQuery, open_backend, open_index, read_pointer
from domainfit.retrieval.dense import DenseRetriever
from domainfit.stages.compress import run_compress

runner = CliRunner(env={"NO_COLOR": "1"})
SWEEP = {"reductions": ["truncate"], "dims": [256], "precisions": ["int8", "binary"], "pq": [], "ivf_pq": [],
         "rescore_with": ["float32"], "oversample": [4], "latency_queries": 5, "latency_repeats": 1,
         "operating_point": {"min_retention": 0.9}}  # fmt: skip


@pytest.fixture(scope="module")
def compressed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A mini BEIR folder and a workspace where compress chose an operating point."""
    root = tmp_path_factory.mktemp("index-oppoint")
    data = write_beir(build_mini_dataset(), root / "mini")
    workspace = root / "ws"
    result = run_compress(data, Workspace(workspace), CompressConfig.model_validate(SWEEP))
    assert result.operating_point.get("name"), result.operating_point
    chosen = next(v for v in result.variants if v.name == result.operating_point["name"])
    return data, workspace, {"name": chosen.name, "ndcg@10": chosen.metrics["ndcg@10"]}


def _index(data: Path, workspace: Path, precision: str, root: Path) -> object:
    config = root / f"domainfit-{precision.replace('/', '_')}.toml"
    config.write_text(f'[index]\nprecision = "{precision}"\n')
    return runner.invoke(app, ["index", str(data), "--workspace", str(workspace), "--config", str(config),
                               "--json", "--batch-size", "8"])  # fmt: skip


def test_the_index_serves_compress_operating_point_with_its_ndcg(compressed, tmp_path: Path) -> None:
    data, workspace, chosen = compressed
    before = set((workspace / "index").rglob("*")) if (workspace / "index").exists() else set()
    result = _index(data, workspace, "operating-point", tmp_path)
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    pointer = read_pointer(workspace / "index")
    assert pointer.precision == chosen["name"] and built["pointer"]["precision"] == chosen["name"]
    assert any("vectors stored as" in note for note in built["notes"]) or chosen["name"].endswith("/float32")
    assert set((workspace / "index").rglob("*")) != before

    dataset = load_beir(data)
    qrels = dataset.qrels["test"]
    queries = {qid: dataset.queries[qid].text for qid in qrels}
    store, pointer = open_index(workspace / "index")
    try:
        assert store.precision(pointer.version).name == chosen["name"]
        encoder = DenseRetriever(pointer.model, max_seq_length=pointer.max_seq_length)
        vectors = encoder.encode_queries(list(queries.values()))
        run = {
            qid: {h.id: h.score for h in store.search(SearchQuery(vector=v.tolist(), k=100, version=pointer.version))}
            for qid, v in zip(queries, vectors, strict=True)
        }
    finally:
        store.close()
    ours = evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]
    assert abs(ours - chosen["ndcg@10"]) <= 1e-4, (ours, chosen)

    again = _index(data, workspace, "operating-point", tmp_path)
    assert again.exit_code == 0 and json.loads(again.stdout)["up_to_date"] is True


def test_an_explicit_precision_lives_beside_it_and_keeps_its_ranges(compressed, tmp_path: Path) -> None:
    data, workspace, _ = compressed
    first = _index(data, workspace, "int8", tmp_path)
    assert first.exit_code == 0, first.output
    built = json.loads(first.stdout)
    assert built["version"].endswith("_int8") and built["pointer"]["precision"] == "trunc-384/int8"
    assert built["sync"]["embedded"] == 30
    store = open_backend(workspace / "index", read_pointer(workspace / "index").corpus, read_only=True)
    try:
        ranges = store.precision(built["version"]).ranges
        assert ranges is not None and ranges.shape == (2, 384) and (ranges[0] < ranges[1]).all()
    finally:
        store.close()
    forced = runner.invoke(app, ["index", str(data), "--workspace", str(workspace), "--config",
                                 str(tmp_path / "domainfit-int8.toml"), "--json", "--force"])  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["sync"]["embedded"] == 0  # the version and its ranges were kept


def test_the_operating_point_needs_compress_first(tmp_path: Path) -> None:
    data = write_beir(build_mini_dataset(), tmp_path / "mini")
    workspace = tmp_path / "ws"
    result = _index(data, workspace, "operating-point", tmp_path)
    assert result.exit_code == 2, result.output
    assert "compress" in result.output and "Traceback" not in result.output
    assert not (workspace / "index" / "serving.json").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('[index]\nprecision = "pca-128/int8"\n')
    refused = runner.invoke(app, ["index", str(data), "--workspace", str(workspace), "--config", str(bad)])
    assert refused.exit_code == 2 and "PCA" in refused.output
