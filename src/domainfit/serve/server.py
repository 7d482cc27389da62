"""Run the service under uvicorn on an address the token rules allow.

`serve_app` refuses a non-loopback host without a token (`check_bind`), then
runs uvicorn in this process (one worker; uvicorn's own workers are spawned,
never forked, which LanceDB needs) until interrupted. Uvicorn's access log is
off: the service's metrics and query log say what was asked.
"""

from __future__ import annotations

from typing import Any

from domainfit.serve.auth import check_bind

#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_SECONDS = 5


def serve_app(
    app: Any,
    host: str,
    port: int,
    *,
    token_digest: bytes | None,
    log_level: str = "warning",
    limit_concurrency: int | None = 256,
) -> None:
    """Serve ``app`` on ``host:port`` until stopped (SIGINT / SIGTERM end it gracefully).

    Inputs: the ASGI application, the address, whether a token guards it (its
    digest), uvicorn's log level and the most connections served at once
    (503 beyond). Raises `UsageError` for a non-loopback host without a token.
    """
    import uvicorn

    check_bind(host, token_digest)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=limit_concurrency,
        server_header=False,
    )
    uvicorn.Server(config).run()
