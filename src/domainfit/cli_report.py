"""``domainfit report``: one self-contained HTML report and a Markdown summary of the workspace."""

from __future__ import annotations

import typer

from domainfit.cli_common import WorkspaceOpt, guarded
from domainfit.workspace import DEFAULT_WORKSPACE, Workspace


def report(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Write <workspace>/report/report.html and report.md from every stage that has run."""
    from domainfit.report.build import build_report

    html, markdown = guarded(build_report, Workspace(workspace))
    typer.echo(f"wrote {html} and {markdown}")


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the domainfit CLI."""
    app.command()(report)
