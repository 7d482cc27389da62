"""``domainfit monitor``: canaries and query drift of production, for cron or CI (exit 0 healthy, 1 alert, 2 bad input).

Resolves the ``[monitor]`` settings (options win), the query log (``--log``,
else ``[monitor] query_log``, else ``[serve] query_log``) and, with ``--url``,
the bearer token of the running service (``--token-file`` or the environment
variable ``[serve] token_env``). Every run appends a line to
``<workspace>/monitor/history.jsonl`` and writes ``result.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.options import (
    ConfigOpt,
    DemoOpt,
    JsonOpt,
    QuietOpt,
    WorkspaceDataArg,
    WorkspaceOpt,
    print_json,
    workspace_data,
)
from domainfit.core.errors import InputError
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def client_token(token_file: Path | None, env: str) -> str | None:
    """Return the bearer token to send: the first line of ``token_file``, else the environment variable, else None."""
    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(token_file, 0, "-", f"cannot read the token file ({exc})") from None
        if not lines or not lines[0].strip():
            raise InputError(token_file, 1, "-", "the token file's first line is empty")
        return lines[0].strip()
    value = os.environ.get(env, "").strip()
    return value or None


def monitor(
    data: WorkspaceDataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    log: Annotated[Path | None, typer.Option("--log", help="the service's query log (JSONL)")] = None,
    canaries: Annotated[
        Path | None, typer.Option("--canaries", help="JSONL canary list: query and relevant document ids per line")
    ] = None,
    canary_split: Annotated[
        str | None, typer.Option("--canary-split", help="benchmark split whose queries are canaries")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="run the canaries through this running service (default: in process)")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="bearer token of --url (or set DOMAINFIT_SERVE_TOKEN)")
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check canaries and query-stream drift of production; exit 0 healthy, 1 on an alert, 2 on bad input."""
    from domainfit.config import load_config
    from domainfit.core.progress import set_quiet
    from domainfit.stages.monitor import MonitorStage, run_monitor

    set_quiet(quiet or as_json)
    folder = workspace_data(data, demo, workspace, required=False)
    cfg = load_config(
        config,
        {"monitor": {"canaries": str(canaries) if canaries else None, "canary_split": canary_split}},
    )
    settings = cfg.monitor
    query_log = log or settings.query_log or cfg.serve.query_log
    token = client_token(token_file, cfg.serve.token_env) if url else None
    stage = MonitorStage(
        Workspace(workspace),
        folder,
        settings,
        query_log=query_log,
        url=url,
        token=token,
        text=cfg.text,
        max_line_bytes=cfg.data.max_line_mib << 20,
    )
    result = run_monitor(stage)
    if as_json:
        print_json(result.to_dict())
    else:
        from domainfit.core.progress import stderr_console

        console = stderr_console()
        console.print(f"monitor: {result.status} (version {result.version}, tag {result.tag})", highlight=False,
                      markup=False)  # fmt: skip
        for line in [*result.verdict.get("reasons", []), *result.notes]:
            console.print(f"  {line}", highlight=False, markup=False)
        typer.echo(f"wrote {result.output_dir}/result.json and appended to history.jsonl")
    raise typer.Exit(result.exit_code)


#: The function `domainfit.cli.app` registers as this stage's command.
command = monitor
