"""domainfit.toml: defaults, CLI overrides, and errors that name the file, line and key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domainfit.config import BenchConfig, Config, load_config
from domainfit.core.errors import InputError
from domainfit.core.models import DEFAULT_MODEL


def write_toml(tmp_path, text):
    path = tmp_path / "domainfit.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_without_a_file():
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.data.max_line_mib == 8
    bench = cfg.bench
    assert (bench.split, bench.tune_split, bench.depth, bench.rerank_depth) == ("test", "dev", 100, 50)
    assert bench.models == [DEFAULT_MODEL] and bench.reranker is None
    assert bench.metrics == ["ndcg@10", "recall@100", "mrr@10", "map@100"]
    assert bench.primary_metric == "ndcg@10" and bench.hybrid is True


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(write_toml(tmp_path, "# nothing set\n")) == Config()


def test_file_values_load(tmp_path):
    path = write_toml(tmp_path, '[data]\nmax_line_mib = 16\n[bench]\nsplit = "dev"\ndepth = 20\nhybrid = false\n')
    cfg = load_config(path)
    assert cfg.data.max_line_mib == 16
    assert (cfg.bench.split, cfg.bench.depth, cfg.bench.hybrid) == ("dev", 20, False)


def test_cli_style_overrides_apply_and_none_is_ignored(tmp_path):
    path = write_toml(tmp_path, '[bench]\nsplit = "dev"\ndepth = 20\nreranker = "ce"\n')
    overrides = {"bench": {"split": "test", "models": ["a", "b"], "reranker": None, "depth": None}}
    cfg = load_config(path, overrides)
    assert cfg.bench.split == "test"  # option beats file
    assert cfg.bench.models == ["a", "b"]
    assert cfg.bench.reranker == "ce"  # None leaves the file value
    assert cfg.bench.depth == 20
    # without a file, all-None overrides are exactly the defaults
    assert load_config(None, {"bench": {"split": None, "models": None, "reranker": None, "depth": None}}) == Config()
    assert load_config(None, {"bench": {"depth": 5}}).bench.depth == 5


def test_unknown_key_error_names_file_line_and_key(tmp_path):
    path = write_toml(tmp_path, '[bench]\nsplit = "test"\nspilt = "dev"\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    err = info.value
    assert (err.line, err.field, err.message) == (3, "bench.spilt", "unknown key")
    assert str(err) == f"{path}:3: bench.spilt: unknown key"


def test_unknown_key_in_data_section(tmp_path):
    path = write_toml(tmp_path, "[data]\nmax_line_mb = 8\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert (info.value.line, info.value.field) == (2, "data.max_line_mb")


def test_wrong_type_names_line_and_key(tmp_path):
    path = write_toml(tmp_path, '[bench]\nsplit = "test"\ndepth = "many"\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    assert (info.value.line, info.value.field) == (3, "bench.depth")
    assert "integer" in info.value.message


@pytest.mark.parametrize("metric", ["bleu@4", "ndcg@", "NDCG@10", "ndcg@ten", "recall@10 ", ""])
def test_bad_metric_name_rejected(tmp_path, metric):
    path = write_toml(tmp_path, f'[bench]\nmetrics = ["ndcg@10", "{metric}"]\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    assert (info.value.line, info.value.field) == (2, "bench.metrics")
    assert "unknown metric" in info.value.message and not info.value.message.startswith("Value error")


def test_bad_metric_from_options_has_no_line():
    with pytest.raises(InputError) as info:
        load_config(None, {"bench": {"metrics": ["ndcg@10", "bleu"]}})
    assert str(info.value).startswith("<options>: bench.metrics: unknown metric(s) ['bleu']")


@pytest.mark.parametrize("metric", ["ndcg@10", "recall@1000", "mrr@10", "map", "map@100", "precision@5", "ndcg"])
def test_known_metric_names_accepted(metric):
    assert BenchConfig(metrics=[metric]).metrics == [metric]


def test_assignment_is_validated():
    cfg = load_config(None)
    with pytest.raises(ValidationError):
        cfg.bench.depth = 0
    with pytest.raises(ValidationError):
        cfg.bench.metrics = ["bleu"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"[bench]\ndepth = \n", "invalid TOML"),
        (b'[bench]\nsplit = "t\xe9st"\n', "invalid UTF-8"),
    ],
)
def test_unreadable_file_is_input_error(tmp_path, content, fragment):
    path = tmp_path / "domainfit.toml"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.field == "-" and fragment in info.value.message


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_unknown_key_line_is_looked_up_in_its_own_section(tmp_path):
    path = write_toml(tmp_path, "[data]\nmax_line_mib = 8\n[bench]\nmax_line_mib = 3\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert (info.value.line, info.value.field) == (4, "bench.max_line_mib")
