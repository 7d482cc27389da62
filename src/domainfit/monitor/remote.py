"""Canary queries through a running search service (``domainfit monitor --url``): one ``POST /search`` each.

The service answers from whatever production serves at that moment (its
pointer), so this measures exactly what users get. The score floor is lifted
(``min_score`` -1e30) so the run holds the top ``k`` as the in-process run
does and as the baseline was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domainfit.core.errors import DomainfitError, UsageError
from domainfit.core.types import Run

#: Seconds one canary search may take.
TIMEOUT_SECONDS = 60.0


def remote_run(url: str, token: str | None, queries: Mapping[str, str], k: int) -> Run:
    """Search each query through the service at ``url`` (bearer ``token`` when given); return the run.

    Raises `UsageError` for a refused token or a request the service rejects,
    `DomainfitError` when the service cannot be reached.
    """
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    run: Run = {}
    try:
        with requests.Session() as client:
            client.headers.update(headers)
            for qid, text in queries.items():
                body: dict[str, Any] = {"query": text, "k": k, "min_score": -1e30}
                response = client.post(f"{url.rstrip('/')}/search", json=body, timeout=TIMEOUT_SECONDS)
                if response.status_code == 401:
                    raise UsageError(f"{url}: the service refused the bearer token (401)")
                if response.status_code != 200:
                    raise UsageError(f"{url}: /search answered {response.status_code} for canary {qid!r}")
                run[qid] = {h["id"]: float(h["score"]) for h in response.json()["hits"]}
    except requests.RequestException as exc:
        raise DomainfitError(f"{url}: cannot reach the search service ({exc})") from None
    return run
