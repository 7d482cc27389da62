"""Cost of ownership: storage arithmetic (the 100B x 768 worked example), tiers, re-embedding, serving, CLI."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.compress.config import CostConfig, TierConfig
from domainfit.compress.cost import baseline_cost, compare, storage_bytes, tiered_cost
from domainfit.core.errors import InputError
from domainfit.stages.cost import fit_tiers

runner = CliRunner()

N = 100_000_000_000  # 100B vectors
D = 768


def worked_config(**changes) -> CostConfig:
    """Hot 768-d float16 (10 %), warm 384-d int8 (30 %), cold 128-d binary (60 %)."""

    def tier(dims, precision, vectors, queries, price, ms):
        return TierConfig(
            dims=dims,
            precision=precision,
            vector_share=vectors,
            query_share=queries,
            storage_usd_per_gb_month=price,
            query_cpu_ms=ms,
        )

    tiers = {
        "hot": tier(768, "float16", 0.1, 0.8, 5.0, 1),
        "warm": tier(384, "int8", 0.3, 0.15, 0.08, 5),
        "cold": tier(128, "binary", 0.6, 0.05, 0.023, 50),
    }
    base = {
        "tiers": tiers,
        "compute_usd_per_hour": 0.20,
        "queries_per_month": 10_000_000,
        "reembeds_per_year": 1,
        "embed_machines": 10,
    }
    return CostConfig(**{**base, **changes})


def test_storage_bytes_of_100b_vectors_of_768_dims_are_exact():
    assert storage_bytes(N, D, "float32") == 307_200_000_000_000  # 307.2 TB
    assert storage_bytes(N, D, "float16") == 153_600_000_000_000  # 153.6 TB
    assert storage_bytes(N, D, "int8") == 76_800_000_000_000  # 76.8 TB
    assert storage_bytes(N, D, "binary") == 9_600_000_000_000  # 9.6 TB
    assert storage_bytes(N, 128, "binary") == 1_600_000_000_000


def test_worked_example_tiers_against_one_float32_tier():
    config = worked_config()
    tiered = tiered_cost(N, config, D, docs_per_second=1000)
    hot, warm, cold = tiered.tiers
    # vectors and bytes, by hand: 10e9 x 1536 B, 30e9 x 384 B, 60e9 x 16 B
    assert (hot.vectors, warm.vectors, cold.vectors) == (10_000_000_000, 30_000_000_000, 60_000_000_000)
    assert (hot.storage_bytes, warm.storage_bytes, cold.storage_bytes) == (
        15_360_000_000_000,
        11_520_000_000_000,
        960_000_000_000,
    )
    assert tiered.storage_bytes == 27_840_000_000_000  # 27.84 TB instead of 307.2 TB
    # storage dollars: 15,360 GB x $5 + 11,520 GB x $0.08 + 960 GB x $0.023 per month
    assert hot.storage_usd_per_month == pytest.approx(76_800.0)
    assert warm.storage_usd_per_month == pytest.approx(921.6)
    assert cold.storage_usd_per_month == pytest.approx(22.08)
    assert tiered.storage_usd_per_year == pytest.approx((76_800.0 + 921.6 + 22.08) * 12)  # 932,924.16
    # serving: 120M queries a year; 96M x 1 ms + 18M x 5 ms + 6M x 50 ms = 486,000 s = 135 h, at $0.20/h
    assert [t.queries_per_year for t in tiered.tiers] == pytest.approx([96e6, 18e6, 6e6])
    assert tiered.serving_usd_per_year == pytest.approx(27.0)
    # re-embedding: 1e11 / 1000 docs/s = 1e8 s = 27,777.8 machine-hours = $5,555.56; 10 machines: 2,777.8 h wall
    assert tiered.reembed_machine_hours == pytest.approx(1e8 / 3600)
    assert tiered.reembed_wall_hours == pytest.approx(1e7 / 3600)
    assert tiered.reembed_usd_per_year == pytest.approx(5555.5556, rel=1e-6)
    assert tiered.total_usd_per_year == pytest.approx(932_924.16 + 27.0 + 5555.5556, rel=1e-9)

    base = baseline_cost(N, config, D, docs_per_second=1000)
    assert base.storage_bytes == 307_200_000_000_000
    assert base.storage_usd_per_year == pytest.approx(307_200 * 5.0 * 12)  # $18,432,000
    assert base.serving_usd_per_year == pytest.approx(120e6 * 0.001 / 3600 * 0.2)  # $6.67
    comparison = compare(N, config, D, docs_per_second=1000)
    assert comparison.saving_usd_per_year == pytest.approx(base.total_usd_per_year - tiered.total_usd_per_year)
    assert comparison.saving_share == pytest.approx(comparison.saving_usd_per_year / base.total_usd_per_year)
    assert 0.94 < comparison.saving_share < 0.96


def test_replicas_multiply_storage_and_baseline_prices_can_be_overridden():
    config = worked_config()
    config.tiers["hot"].replicas = 3
    assert tiered_cost(N, config, D, 1000).tiers[0].storage_bytes == 3 * 15_360_000_000_000
    cheap = worked_config(baseline_storage_usd_per_gb_month=0.1, baseline_query_cpu_ms=2.0)
    base = baseline_cost(N, cheap, D, 1000)
    assert base.storage_usd_per_year == pytest.approx(307_200 * 0.1 * 12)
    assert base.serving_usd_per_year == pytest.approx(120e6 * 0.002 / 3600 * 0.2)


def test_tier_shares_must_sum_to_one_and_unknown_keys_are_rejected():
    with pytest.raises(ValidationError, match="vector_share values must sum to 1"):
        CostConfig(
            tiers={"only": TierConfig(vector_share=0.5, query_share=1.0, storage_usd_per_gb_month=1, query_cpu_ms=1)}
        )
    with pytest.raises(ValidationError, match="Extra inputs"):
        TierConfig(vector_share=1, query_share=1, storage_usd_per_gb_month=1, query_cpu_ms=1, colour="red")


def test_tiers_wider_than_the_model(tmp_path):
    defaults = CostConfig()  # warm tier keeps 384 dimensions
    narrowed, notes = fit_tiers(defaults, 256, None)
    assert narrowed.tiers["warm"].dims == 256 and "warm" in notes[0]
    path = tmp_path / "domainfit.toml"
    path.write_text(
        "[cost.tiers.hot]\nvector_share = 1\nquery_share = 1\nstorage_usd_per_gb_month = 1\n"
        "query_cpu_ms = 1\ndims = 1024\n"
    )
    from domainfit.config import load_config

    config = load_config(path).cost
    with pytest.raises(InputError) as err:
        fit_tiers(config, 384, path)
    assert str(err.value) == f"{path}:6: cost.tiers.hot.dims: 1024 exceeds the model's 384 dimensions"


def test_cost_command_prices_the_corpus(tmp_path, mini_beir, minilm):
    ws = tmp_path / "ws"
    result = runner.invoke(
        app, ["cost", str(mini_beir), "-w", str(ws), "--docs-per-second", "100", "--json", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model_dims"] == 384 and report["throughput_source"].startswith("given")
    corpus = report["corpus"]
    assert corpus["vectors"] == 30  # the corpus size of the folder
    assert corpus["baseline"]["storage_bytes"] == 30 * 384 * 4
    assert [p["vectors"] for p in report["projections"]] == [10**6, 10**8, 10**9, 10**11]
    assert corpus["tiered"]["reembed_machine_hours"] == pytest.approx(30 / 100 / 3600)
    saved = json.loads((ws / "cost" / "cost.json").read_text())
    assert saved["corpus"] == corpus
    assert "## Projected sizes" in (ws / "cost" / "summary.md").read_text()
    assert (ws / "cost" / "manifest.json").is_file()


def test_cost_command_probes_throughput_and_prices_given_sizes(tmp_path):
    config = tmp_path / "domainfit.toml"
    config.write_text("[cost]\nprobe_documents = 4\nprojected_vectors = [1000]\n")
    result = runner.invoke(
        app, ["cost", "-w", str(tmp_path / "ws"), "-c", str(config), "--vectors", "5000000", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "measured on this machine: 4 documents" in result.output
    assert "5,000,000 vectors, per tier" in result.output


def test_cost_bad_config_exits_2(tmp_path):
    config = tmp_path / "domainfit.toml"
    config.write_text("[cost]\nqueries_per_month = 1\n[cost.tiers.hot]\nvector_share = 2\n")
    result = runner.invoke(app, ["cost", "-w", str(tmp_path / "ws"), "-c", str(config), "--vectors", "10"])
    assert result.exit_code == 2
    assert "cost.tiers.hot.vector_share" in result.output
    result = runner.invoke(app, ["cost", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "DATA" in result.output
