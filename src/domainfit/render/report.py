"""The report: one self-contained HTML page and ``report.md``, rendered from the stages' results.

Input: `ReportInputs`, what the stages wrote (read from the workspace by the
``report`` stage, `domainfit.stages.report`); a stage that has not run is
left out. Output: the HTML text (Jinja2, plots inlined) and the Markdown text.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from domainfit import __version__
from domainfit.render.timings import timing_rows, timing_summary, timings_markdown


@dataclass
class ReportInputs:
    """What the report shows, as the stages wrote it (None or empty: the stage has not run).

    ``markdown``: the stages' own Markdown summaries, in report order;
    ``config``: the resolved config sections the stages recorded, by section name;
    ``decisions``: ``{when: decision-<when>.json}``; ``frontier``: compress's PNG bytes;
    ``monitor``: the latest monitoring run (``monitor/result.json``) and ``monitor_plot`` its history's PNG bytes.
    """

    workspace: str
    bench: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    history: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    recipe: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    decisions: dict[str, Any] = field(default_factory=dict)
    frontier: bytes | None = None
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    markdown: list[str] = field(default_factory=list)
    monitor: dict[str, Any] | None = None
    monitor_plot: bytes | None = None


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


def _decisions(decisions: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the before/after decisions (``{when: decision-<when>.json}``), styled for the page."""
    out = []
    for when, title in (("before", "Before training"), ("after", "After training")):
        d = decisions.get(when)
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
        if m.get("cosine_to_base") is not None:  # None: the model has another width (a static model)
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


def _figures(found: ReportInputs) -> tuple[dict[str, str], dict[str, str]]:
    """Return the plots (base64 PNG data URIs) and the HTML tables of the bench, training and eval sections."""
    from domainfit.render import plots  # matplotlib loads only when a report is rendered

    figures: dict[str, str] = {}
    tables: dict[str, str] = {}
    bench, history, evaluation = found.bench, found.history, found.evaluation
    if bench:
        tables["bench"] = _table(bench["systems"])
        metric = _shown_metric(bench["systems"])
        figures["bench"] = plots.systems_bar(bench["systems"], metric, f"baselines: {metric}")
        names = [s["name"] for s in bench["systems"]]
        figures["bench_slices"] = plots.slice_bars(bench["slices"], names, metric)
    if history and history.get("train_loss"):
        figures["training"] = plots.training_curves(history)
    if evaluation:
        tables["eval"] = _table(evaluation["systems"])
        pair = [n for n in ("dense:base", "dense:fine-tuned") if n in evaluation["slices"]]
        if pair:
            figures["eval_slices"] = plots.slice_bars(evaluation["slices"], pair, _shown_metric(evaluation["systems"]))
    return figures, tables


def render_html(found: ReportInputs) -> str:
    """Render the self-contained HTML report."""
    from jinja2 import Environment, select_autoescape

    figures, tables = _figures(found)
    evaluation, timings = found.evaluation, found.timings
    eval_lines: list[str] = []
    forgetting_lines: list[str] = []
    if evaluation:
        eval_lines, forgetting_lines = _eval_lines(evaluation, _shown_metric(evaluation["systems"]))
    frontier = "data:image/png;base64," + base64.b64encode(found.frontier).decode() if found.frontier else None
    plot = found.monitor_plot
    monitor_plot = "data:image/png;base64," + base64.b64encode(plot).decode() if plot else None
    sections = dict(found.config)
    if evaluation:
        sections["eval"] = {
            "base_model": evaluation["base_model"],
            "model": evaluation["model"],
            "split": evaluation["split"],
        }
    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(files("domainfit.render").joinpath("templates/report.html.j2").read_text())
    return template.render(
        workspace=found.workspace, version=__version__, decisions=_decisions(found.decisions), bench=found.bench,
        train=found.train, recipe=found.recipe, evaluation=evaluation, tables=tables, plots=figures,
        eval_lines=eval_lines, forgetting_lines=forgetting_lines, compress_plot=frontier,
        monitor=found.monitor, monitor_plot=monitor_plot,
        config_toml=config_toml(sections), similarity_lines=_similarity_lines(found.bench),
        timings=timings, timing_rows=timing_rows(timings) if timings else [],
        timing_summary=timing_summary(timings) if timings else None,
        examples=[("Improved most", (evaluation or {}).get("improved")),
                  ("Got worse most", (evaluation or {}).get("worsened"))],
    )  # fmt: skip


def render_markdown(found: ReportInputs) -> str:
    """Concatenate the stages' own Markdown summaries (one heading level down), then the time section."""
    parts = ["# domainfit report", ""]
    for text in found.markdown:
        parts += [text.replace("\n# ", "\n## ").replace("# ", "## ", 1), ""]
    if found.timings:
        parts += [timings_markdown(found.timings).replace("# ", "## ", 1), ""]
    return "\n".join(parts)
