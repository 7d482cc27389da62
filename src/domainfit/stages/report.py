"""Build ``<workspace>/report/report.html`` (self-contained) and ``report.md`` from the stage artifacts.

Inputs: whatever stages have run in the workspace (bench, decide, train, eval,
compress); missing stages are left out of the report. Output: the two paths.
"""

from __future__ import annotations

import base64
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from domainfit import __version__
from domainfit.core.files import atomic_write_text, staged_dir
from domainfit.core.workspace import Workspace
from domainfit.render import plots
from domainfit.render.timings import timing_rows, timing_summary, timings_markdown


def _load(path: Path) -> Any:
    """Read a JSON artifact, or None when the stage has not run."""
    return json.loads(path.read_text()) if path.is_file() else None


def _table(systems: list[dict[str, Any]]) -> str:
    """Render an HTML table of systems x metrics with the best value of each metric in bold."""
    from html import escape

    metrics = list(systems[0]["metrics"])
    best = {m: max(s["metrics"][m] for s in systems) for m in metrics}
    head = "<tr><th>system</th>" + "".join(f"<th>{escape(m)}</th>" for m in metrics) + "</tr>"
    rows = []
    for s in systems:
        cells = "".join(
            f'<td class="{"best" if s["metrics"][m] == best[m] else ""}">{s["metrics"][m]:.4f}</td>' for m in metrics
        )
        rows.append(f"<tr><td>{escape(s['name'])}</td>{cells}</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _toml_value(value: Any) -> str:
    """Render a scalar, list or inline table (a dict inside a list) as TOML; None keys of a table are left out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    return json.dumps(str(value))


def config_toml(sections: dict[str, dict[str, Any]]) -> str:
    """Render resolved config sections as a ``domainfit.toml`` (None values are left out)."""
    lines: list[str] = []
    for name, values in sections.items():
        _toml_table(name, values, lines)
    return "\n".join(lines)


def _toml_table(name: str, values: dict[str, Any], lines: list[str]) -> None:
    """Append ``[name]`` with its scalar keys, then each nested table as ``[name.key]``."""
    lines.append(f"[{name}]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None and not isinstance(v, dict)]
    lines.append("")
    for key, value in values.items():
        if isinstance(value, dict):
            _toml_table(f"{name}.{key}", value, lines)


def _decisions(root: Path) -> list[dict[str, Any]]:
    """Return the before/after decisions found in the workspace, styled for the page."""
    out = []
    for when, title in (("before", "Before training"), ("after", "After training")):
        d = _load(root / "decide" / f"decision-{when}.json")
        if d:
            css = {"fine-tune": "neutral", "ship": "good", "do not ship": "bad"}.get(d["recommendation"], "neutral")
            out.append({**d, "title": title, "css": css})
    return out


def _shown_metric(systems: list[dict[str, Any]]) -> str:
    """Return the metric the report plots: NDCG@10 when the stage computed it, else its first metric."""
    metrics = list(systems[0]["metrics"]) if systems else []
    return "ndcg@10" if "ndcg@10" in metrics or not metrics else metrics[0]


def _eval_lines(evaluation: dict[str, Any], metric: str = "ndcg@10") -> tuple[list[str], list[str]]:
    """Sentences for the lift (with p-values) and the forgetting check."""
    lines = []
    for kind, deltas in evaluation["lift"].items():
        sig = evaluation["significance"].get(kind)
        p = ""
        if sig:
            comp = next((c for c in sig["comparisons"] if c["metric"] == metric), None)
            p = f" (p = {comp['p_value']:.3g}, {sig['test_description']})" if comp else ""
        lines.append(f"{kind}: fine-tuned minus base {metric} {deltas[metric]:+.4f}{p}")
    f = evaluation["forgetting"]
    if not f["measured"]:
        forgetting = [f"not measured: {f['reason']}"]
    else:
        forgetting = []
        if "labelled" in f:
            lab = f["labelled"]
            forgetting.append(f"general-set NDCG@10 drop: {lab['drop']:+.4f}")
        ov = f["neighbour_overlap"]
        forgetting.append(f"nearest-neighbour overlap@{ov['k']} on {ov['texts']} general texts: {ov['mean']:.3f}")
        forgetting += _variant_lines(f, evaluation["lift"], metric)
    return lines, forgetting


def _variant_lines(forgetting: dict[str, Any], lift: dict[str, dict[str, float]], metric: str) -> list[str]:
    """One sentence per trained variant: what it gained on the domain and what it lost on general text."""
    from domainfit.render.eval_summary import MERGED, TUNED, options_used

    variants = forgetting.get("variants") or {}
    if not variants:
        return []
    lines = [f"options against forgetting in this run: {options_used(forgetting.get('train_options'))}"]
    for name, m in variants.items():
        gain = lift.get("dense" if name == TUNED else f"dense ({name})", {}).get(metric)
        parts = [f"domain dense {metric} lift {gain:+.4f}" if gain is not None else None]
        if "ndcg@10_drop" in m:
            parts.append(f"general NDCG@10 drop {m['ndcg@10_drop']:+.4f}")
        parts.append(f"neighbour overlap {m['neighbour_overlap']:.3f}")
        parts.append(f"cosine to base {m['cosine_to_base']:.3f}")
        title = f"{name} (weight interpolation with the base)" if name == MERGED else name
        lines.append(f"{title}: " + ", ".join(p for p in parts if p))
    return lines


def _similarity_lines(bench: dict[str, Any] | None) -> list[str]:
    """One verdict sentence per domain-specific similarity system of the bench (empty when none ran)."""
    entries = (bench or {}).get("similarity") or {}
    if not entries:
        return []
    from domainfit.evaluation.similarity import summary_line

    return [summary_line(entry) for entry in entries.values()]


def build_report(workspace: Workspace) -> tuple[Path, Path]:
    """Render the report of a workspace; returns (html path, markdown path)."""
    from jinja2 import Environment, select_autoescape

    workspace.check()  # a folder domainfit did not create is refused before anything is read from it
    root = workspace.root
    bench = _load(root / "bench" / "metrics.json")
    train = _load(root / "train" / "result.json")
    history = _load(root / "train" / "history.json")
    evaluation = _load(root / "eval" / "metrics.json")
    recipe = _load(root / "recipe" / "search.json")
    timings = _load(root / "plan" / "timings.json")
    figures: dict[str, str] = {}
    tables: dict[str, str] = {}
    if bench:
        tables["bench"] = _table(bench["systems"])
        metric = _shown_metric(bench["systems"])
        figures["bench"] = plots.systems_bar(bench["systems"], metric, f"baselines: {metric}")
        names = [s["name"] for s in bench["systems"]]
        figures["bench_slices"] = plots.slice_bars(bench["slices"], names, metric)
    if history and history.get("train_loss"):
        figures["training"] = plots.training_curves(history)
    eval_lines: list[str] = []
    forgetting_lines: list[str] = []
    if evaluation:
        tables["eval"] = _table(evaluation["systems"])
        pair = [n for n in ("dense:base", "dense:fine-tuned") if n in evaluation["slices"]]
        metric = _shown_metric(evaluation["systems"])
        if pair:
            figures["eval_slices"] = plots.slice_bars(evaluation["slices"], pair, metric)
        eval_lines, forgetting_lines = _eval_lines(evaluation, metric)
    frontier = root / "compress" / "frontier.png"
    compress_plot = (
        "data:image/png;base64," + base64.b64encode(frontier.read_bytes()).decode() if frontier.is_file() else None
    )
    sections = {}
    for stage, keys in (
        ("bench", ("bench", "chunking", "text")),
        ("synth", ("synth",)),
        ("mine", ("mine",)),
        ("train", ("train",)),
        ("compress", ("compress",)),
    ):
        cfg = _load(root / stage / "config.json")
        for key in keys:
            if cfg and isinstance(cfg.get(key), dict):
                sections[key] = cfg[key]
    if evaluation:
        sections["eval"] = {
            "base_model": evaluation["base_model"],
            "model": evaluation["model"],
            "split": evaluation["split"],
        }
    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(files("domainfit.render").joinpath("templates/report.html.j2").read_text())
    html = template.render(
        workspace=str(root), version=__version__, decisions=_decisions(root), bench=bench, train=train, recipe=recipe,
        evaluation=evaluation, tables=tables, plots=figures, eval_lines=eval_lines,
        forgetting_lines=forgetting_lines, compress_plot=compress_plot, config_toml=config_toml(sections),
        similarity_lines=_similarity_lines(bench),
        timings=timings, timing_rows=timing_rows(timings) if timings else [],
        timing_summary=timing_summary(timings) if timings else None,
        examples=[("Improved most", (evaluation or {}).get("improved")),
                  ("Got worse most", (evaluation or {}).get("worsened"))],
    )  # fmt: skip
    markdown = _markdown(root)
    out = workspace.stage_dir("report")
    with workspace.lock(), staged_dir(out) as tmp:
        atomic_write_text(tmp / "report.html", html)
        atomic_write_text(tmp / "report.md", markdown)
        workspace.write_manifest(
            tmp, "report", {"stages": sorted(_reported_stages(root))}, ["report.html", "report.md"]
        )
    return out / "report.html", out / "report.md"


def _reported_stages(root: Path) -> list[str]:
    """Return the stages whose manifests the report read (its recorded inputs)."""
    return [p.parent.name for p in root.glob("*/manifest.json") if p.parent.name != "report"]


def _markdown(root: Path) -> str:
    """Concatenate the stages' own Markdown summaries (decisions, baselines, evaluation)."""
    parts = ["# domainfit report", ""]
    for path in (
        root / "decide" / "decision-before.md",
        root / "bench" / "summary.md",
        root / "recipe" / "summary.md",
        root / "decide" / "decision-after.md",
        root / "eval" / "summary.md",
        root / "compress" / "summary.md",
    ):
        if path.is_file():
            parts += [path.read_text().replace("\n# ", "\n## ").replace("# ", "## ", 1), ""]
    timings = _load(root / "plan" / "timings.json")
    if timings:
        parts += [timings_markdown(timings).replace("# ", "## ", 1), ""]
    return "\n".join(parts)
