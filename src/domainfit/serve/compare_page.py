"""The HTML of the ``/compare`` page: plain server-rendered forms, every value escaped (`html.escape`).

No script: the query box is a GET form, each judgement button a POST form
(``/compare/judge``) carrying the query, the document id, the grade, the
versions shown and the form token, answered with a redirect back to the page.
Element ids and classes the browser test reads: ``#q``, ``#search``,
``#old-column`` / ``#new-column`` (``data-version``), ``li.result``
(``data-doc``, ``data-move``), ``button.judge-relevant`` /
``button.judge-not-relevant``, ``.grade`` and ``#notice``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from domainfit.serve.compare import Column, Comparison, Row

#: The grades the page offers: (grade, button class, label).
GRADES = ((1, "judge-relevant", "relevant"), (0, "judge-not-relevant", "not relevant"))

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
form.search input[type=text] { width: 28rem; }
.columns { display: flex; gap: 2rem; }
.column { flex: 1; min-width: 0; }
li.result { margin-bottom: .9rem; }
.move { font-size: .8rem; padding: 0 .3rem; border-radius: .2rem; background: #eee; }
.move-new { background: #d4f5d4; } .move-dropped { background: #f8d4d4; }
.move-up { background: #dcebfb; } .move-down { background: #fbeedc; }
.snippet { color: #555; font-size: .9rem; }
.judge form { display: inline; } .grade { font-weight: bold; }
#notice { padding: .4rem .6rem; background: #fffbd6; border: 1px solid #e5d87a; }
.error { padding: .4rem .6rem; background: #fde2e2; border: 1px solid #e59a9a; }
"""


#: Headers of every page: not cached, not framed, no script, forms only to this service.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """Wrap ``body`` (already escaped HTML) in a complete page."""
    html = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def login_page(reason: str) -> HTMLResponse:
    """Return the 401 page of a browser without the session: a form sending the token as ``?token=``."""
    body = (
        "<h1>domainfit: compare</h1>"
        f'<p class="error">{escape(reason)}</p>'
        '<form method="get" action="/compare"><label>Bearer token '
        '<input type="password" name="token" id="token" autocomplete="off"></label> '
        '<button type="submit" id="login">Open the page</button></form>'
    )
    response = _page("domainfit: log in", body, 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def error_page(status: int, message: str, form: str = "") -> HTMLResponse:
    """Return a page with one error line (and the query form, when given)."""
    return _page(
        "domainfit: compare", f"<h1>domainfit: compare</h1>{form}<p class='error'>{escape(message)}</p>", status
    )


def _options(versions: Sequence[str], chosen: str | None) -> str:
    """Return the ``<option>`` elements of a version picker."""
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(v)}</option>' for v in versions
    )


def query_form(query: str, versions: Sequence[str], old: str | None, new: str | None, k: int) -> str:
    """Return the GET form: the query box, the two versions and k."""
    return (
        '<form class="search" method="get" action="/compare">'
        f'<input type="text" name="q" id="q" value="{escape(query)}" placeholder="a query" autofocus> '
        f'<label>old <select name="old" id="old">{_options(versions, old)}</select></label> '
        f'<label>new <select name="new" id="new">{_options(versions, new)}</select></label> '
        f'<label>k <input type="number" name="k" id="k" value="{k}" min="1"></label> '
        '<button type="submit" id="search">Compare</button></form>'
    )


def _move(row: Row) -> str:
    """Return the badge saying what moved."""
    label = {"new": "new in top k", "dropped": "dropped", "same": "same rank"}.get(row.move)
    if label is None:
        label = f"{'▲' if row.move == 'up' else '▼'} {row.move} {row.places}"
    return f'<span class="move move-{escape(row.move)}">{escape(label)}</span>'


def _judge_forms(row: Row, hidden: Mapping[str, str], grade: int | None) -> str:
    """Return the judgement buttons of one result, with the grade on file when it is judged."""
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in {**hidden, "doc_id": row.id}.items()
    )
    forms = "".join(
        f'<form method="post" action="/compare/judge">{fields}<input type="hidden" name="grade" value="{g}">'
        f'<button type="submit" class="{cls}">{label}</button></form> '
        for g, cls, label in GRADES
    )
    judged = f'<span class="grade">judged {grade}</span>' if grade is not None else ""
    return f'<div class="judge">{forms}{judged}</div>'


def _column(side: str, column: Column, hidden: Mapping[str, str], grades: Mapping[str, int]) -> str:
    """One column: its heading and the ranked results with their moves and judgement controls."""
    items = "".join(
        f'<li class="result" data-doc="{escape(r.id)}" data-move="{escape(r.move)}">'
        f"<strong>{escape(r.title or r.id)}</strong> <code>{escape(r.id)}</code> "
        f'<span class="score">{r.score:.4f}</span> {_move(r)}'
        f'<div class="snippet">{escape(r.snippet)}</div>{_judge_forms(r, hidden, grades.get(r.id))}</li>'
        for r in column.rows
    )
    empty = "" if column.rows else "<p>no results</p>"
    return (
        f'<section class="column" id="{side}-column" data-version="{escape(column.version)}">'
        f"<h2>{side}: {escape(column.version)} <small>({escape(column.role)})</small></h2>"
        f"{empty}<ol>{items}</ol></section>"
    )


def compare_page(
    comparison: Comparison | None,
    *,
    versions: Sequence[str],
    old: str | None,
    new: str | None,
    k: int,
    form_token: str,
    grades: Mapping[str, int],
    notice: str | None,
    folder: str,
) -> HTMLResponse:
    """Return the page: the query form, a notice (the last judgement's outcome) and, for a query, both columns."""
    query = comparison.query if comparison is not None else ""
    parts = ["<h1>domainfit: compare</h1>", query_form(query, versions, old, new, k)]
    if notice:
        parts.append(f'<p id="notice">{escape(notice)}</p>')
    if comparison is not None:
        hidden = {"q": comparison.query, "old": comparison.old.version, "new": comparison.new.version,
                  "k": str(comparison.k), "form_token": form_token}  # fmt: skip
        parts.append(
            f'<div class="columns">{_column("old", comparison.old, hidden, grades)}'
            f"{_column('new', comparison.new, hidden, grades)}</div>"
        )
    parts.append(f"<p><small>judgements are appended to {escape(folder)}</small></p>")
    return _page("domainfit: compare", "".join(parts))


def back_to(query: str, old: str, new: str, k: int, doc_id: str, written: bool) -> str:
    """Return where the judgement form redirects: the same comparison, naming the document just judged."""
    outcome = "written" if written else "kept"
    return "/compare?" + urlencode({"q": query, "old": old, "new": new, "k": k, "judged": doc_id, "outcome": outcome})


def notice_of(doc_id: str | None, outcome: str | None, grades: Mapping[str, int]) -> str | None:
    """Return the notice after a judgement (fixed wording: of the address only the judged id is shown)."""
    if not doc_id or doc_id not in grades:
        return None
    if outcome == "kept":
        return f"{doc_id} was already judged {grades[doc_id]} for this query; the first judgement stands"
    return f"{doc_id} judged {grades[doc_id]} for this query (appended to the qrels)"
