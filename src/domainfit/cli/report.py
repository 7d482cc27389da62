"""``domainfit report``: one self-contained HTML report and a Markdown summary of the workspace."""

from __future__ import annotations

import typer

from domainfit.cli.options import WorkspaceOpt
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def report(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Write <workspace>/report/report.html and report.md from every stage that has run."""
    from domainfit.stages.registry import build_report

    html, markdown = build_report(Workspace(workspace))
    typer.echo(f"wrote {html} and {markdown}")


#: The function `domainfit.cli.app` registers as this stage's command.
command = report
