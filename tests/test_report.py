"""The HTML and Markdown report from a workspace."""

import html as html_module
import re

from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import load_config
from domainfit.render.report import config_toml

runner = CliRunner()


def test_report_from_bench_and_decision(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(ws), "--quiet"]).exit_code == 0
    assert runner.invoke(app, ["decide", str(mini_beir), "--workspace", str(ws), "--quiet"]).exit_code == 0
    result = runner.invoke(app, ["report", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    html = (ws / "report" / "report.html").read_text()
    assert "Before training: generate data first" in html and "Baselines on" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2  # bars + per-slice, embedded
    assert "http://" not in html and "https://" not in html  # self-contained
    block = html_module.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", html, re.S).group(1))
    assert "[bench]" in block and "[text]" in block and "[bench.similarity.facets]" in block  # config to reproduce
    (tmp_path / "reproduce.toml").write_text(block)
    assert load_config(tmp_path / "reproduce.toml").bench.split == "test"  # a valid domainfit.toml as printed
    markdown = (ws / "report" / "report.md").read_text()
    assert markdown.startswith("# domainfit report") and "## Before training" in markdown


def test_config_toml_renders_values():
    text = config_toml({"bench": {"split": "test", "depth": 100, "hybrid": True, "models": ["a", "b"], "x": None}})
    assert text.splitlines() == ["[bench]", 'split = "test"', "depth = 100", "hybrid = true", 'models = ["a", "b"]']


def test_config_toml_renders_nested_tables_and_inline_tables():
    text = config_toml({"compress": {"pq": [{"m": 16, "nbits": 8}], "llm": {"model": "m", "key": None}}})
    assert text.splitlines() == ["[compress]", "pq = [{m = 16, nbits = 8}]", "", "[compress.llm]", 'model = "m"']
