"""The ``index.md`` of the ``index`` stage: what is indexed, its size and versions, how to serve and query it."""

from __future__ import annotations

import json

from domainfit.index.results import IndexResult


def _size(n: int) -> str:
    """Format a byte count (KiB, MiB, GiB)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def sample_request(result: IndexResult) -> dict[str, object]:
    """Return the body of a sample ``POST /search`` for the served mode."""
    pointer = result.pointer
    query = str(result.sample.get("query") or "your question")
    return {"query": query, "k": 5, "mode": pointer.get("mode", "dense"), "fields": ["title"]}


def index_markdown(result: IndexResult) -> str:
    """Render the report section of the serving index."""
    p, s = result.pointer, result.sync
    fusion = ""
    if p.get("mode") == "hybrid":
        alpha = p.get("alpha")
        fusion = f" ({p.get('fusion')}" + (f", alpha {alpha:g}" if alpha is not None else ", k 60") + ")"
    lines = [
        "# Serving index",
        "",
        f"Deployed system `{result.system}`: model `{result.model}` as version `{result.version}`, "
        f"served {p.get('mode')}{fusion} from the {result.backend} store `{result.corpus}` "
        f"({result.documents} documents, {_size(result.size_bytes)} on disk).",
        "",
        f"Production reads tag `{p.get('tag')}` (table version {p.get('table_version')}) through "
        f"`{result.folder}/serving.json`.",
        "",
        f"This build wrote {s.get('written', 0)} rows, deleted {s.get('deleted', 0)}, embedded {s.get('embedded', 0)} "
        f"({s.get('already_embedded', 0)} already had a vector of this version)"
        + (f" at {s.get('docs_per_second', 0):.1f} documents/s." if s.get("embedded") else "."),
        "",
        "| model version | dimension |",
        "|---|---:|",
        *[f"| `{v}` | {d} |" for v, d in sorted(result.versions.items())],
        "",
        "| tag | table version |",
        "|---|---:|",
        *[f"| `{t}` | {v} |" for t, v in sorted(result.tags.items(), key=lambda item: item[1])],
        "",
        "## Serve it",
        "",
        "```sh",
        f"domainfit serve --workspace {result.folder.rsplit('/', 1)[0]}",
        "curl -s http://127.0.0.1:8000/search -H 'content-type: application/json' \\",
        f"  -d '{json.dumps(sample_request(result))}'",
        "```",
    ]
    hits = result.sample.get("hits") or []
    if hits:
        lines += [
            "",
            f'Sample search ({result.sample.get("mode")}): "{result.sample.get("query")}"',
            "",
            "| rank | id | score | title |",
            "|---:|---|---:|---|",
            *[
                f"| {i} | `{h['id']}` | {h['score']:.4f} | {str(h.get('title', '')).replace('|', '/')} |"
                for i, h in enumerate(hits, start=1)
            ],
        ]
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in result.notes]]
    return "\n".join(lines) + "\n"
