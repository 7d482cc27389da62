"""Bearer-token access: the token is kept only as its SHA-256 hash and checked before any body is read.

`BearerAuth` is a pure ASGI middleware: it looks at the ``Authorization``
header of every HTTP request before the application (and so before the
request body is received) and answers 401 with a JSON body
``{"error", "error_type": "Unauthorized"}`` and ``WWW-Authenticate: Bearer``
when the header is missing, malformed or carries a token whose SHA-256 digest
differs from the stored one (compared with `hmac.compare_digest`, in constant
time). The plain token is never stored; `token_digest` turns it into the digest.
With a `BrowserSession` (the ``/compare`` page is on), requests for that page
may instead carry its session cookie, set by a ``?token=`` login
(`domainfit.serve.session`); a refused page request gets the login form.

Which addresses need a token: `is_loopback` says whether a bind address only
accepts connections from this machine; `check_bind` refuses any other address
without a token. A token given to a loopback-only service is accepted and
enforced (other users of the same machine can reach 127.0.0.1 too).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from domainfit.core.errors import InputError, UsageError
from domainfit.serve.errors import json_error_response

if TYPE_CHECKING:
    from domainfit.serve.session import BrowserSession

#: Shortest token accepted: anything shorter is guessable.
MIN_TOKEN_CHARS = 16


def token_digest(token: str) -> bytes:
    """Return the SHA-256 digest of a token (what the service stores instead of the token)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _checked(token: str, where: str) -> str:
    """Return the token stripped of surrounding whitespace; `UsageError` when it is too short."""
    token = token.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise UsageError(f"{where}: the bearer token must have at least {MIN_TOKEN_CHARS} characters")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise UsageError(f"{where}: the bearer token may not contain spaces or control characters")
    return token


def load_token_digest(token_file: Path | str | None, env: str) -> bytes | None:
    """Read the bearer token from ``token_file`` (its first line) or the environment variable ``env``; hash it.

    Output: the SHA-256 digest, or None when neither gives a token. Raises
    `InputError` for a token file that cannot be read, `UsageError` for a token
    that is too short or contains whitespace. The plain token is not kept.
    """
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(path, 0, "-", "token file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, 0, "-", f"cannot read the token file ({exc})") from None
        lines = text.splitlines()
        return token_digest(_checked(lines[0] if lines else "", str(path)))
    value = os.environ.get(env)
    if value is None or not value.strip():
        return None
    return token_digest(_checked(value, f"${env}"))


def is_loopback(host: str) -> bool:
    """Return True when ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, digest: bytes | None) -> None:
    """Refuse (`UsageError`) to bind a non-loopback address without a bearer token."""
    if digest is None and not is_loopback(host):
        raise UsageError(
            f"--host {host} is reachable from other machines: give a bearer token with --token-file "
            "or the environment variable (see `domainfit serve --help`), or bind 127.0.0.1"
        )


def bearer_token(header: bytes) -> bytes | None:
    """Return the token of an ``Authorization: Bearer <token>`` header value, or None when it is not one."""
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>`` matching ``digest``.

    Inputs: the wrapped application, the token's SHA-256 digest and, when the
    compare page is on, its `BrowserSession` (whose cookie is then accepted on
    the page's paths). The check runs on the request headers only, before the
    application receives a byte of the body; a rejected request never reaches
    the application.
    """

    def __init__(self, app: ASGIApp, digest: bytes, session: BrowserSession | None = None) -> None:
        self.app = app
        self.digest = digest
        self.session = session

    def authorised(self, scope: Scope) -> tuple[bool, str]:
        """Return (accepted, reason when not) for the request's headers."""
        headers = [value for name, value in scope.get("headers", []) if name.lower() == b"authorization"]
        if not headers:
            if self.session is not None and self.session.has_cookie(scope):
                return True, ""
            return False, "missing bearer token (send Authorization: Bearer <token>)"
        token = bearer_token(headers[0])
        if token is None:
            return False, "malformed Authorization header (expected Bearer <token>)"
        if not hmac.compare_digest(hashlib.sha256(token).digest(), self.digest):
            return False, "invalid bearer token"
        return True, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass authorised HTTP requests (and non-HTTP events such as lifespan) on; answer 401 to the rest."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        login = self.session.login(scope) if self.session is not None else None
        if login is not None:
            await login(scope, receive, send)
            return
        accepted, reason = self.authorised(scope)
        if accepted:
            await self.app(scope, receive, send)
            return
        if self.session is not None and self.session.covers(scope) and scope.get("method") == "GET":
            from domainfit.serve.compare_page import login_page

            response: Response = login_page(reason)
        else:
            response = json_error_response(401, reason, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
