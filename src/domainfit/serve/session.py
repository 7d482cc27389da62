"""The browser's way through the bearer-token check, for the ``/compare`` page only; and its form token.

A browser cannot send ``Authorization: Bearer`` from a link, so the page
accepts a login: ``GET /compare?token=<the service's token>`` answers 303 to
the same page without the token in the address, setting the cookie
``domainfit_compare``. The cookie does not hold the token: it holds an HMAC of
the token's digest (so a leaked cookie does not leak the API token), is
``HttpOnly``, ``SameSite=Strict`` and limited to ``Path=/compare``, and the
service accepts it on ``/compare`` paths only (never on ``/search`` or
``/embed``).

Every judgement form also carries `BrowserSession.form_token`, an HMAC of the
same secret, which ``POST /compare/judge`` requires: another web site cannot
make the browser post a judgement (cross-site request forgery), also when the
service runs without a token (then the secret is random, drawn at start).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.responses import Response
from starlette.types import Scope

#: The cookie's name.
COOKIE = "domainfit_compare"
#: The path prefix the cookie is sent to and accepted on.
PREFIX = "/compare"


def _header(scope: Scope, name: bytes) -> bytes | None:
    """Return the first value of a request header, or None."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


class BrowserSession:
    """The session cookie and form token of the compare page, derived from the token's digest (or a random secret).

    Inputs: the bearer token's SHA-256 digest (None: the service has no token;
    a random secret then signs the form token, and no login is needed).
    """

    def __init__(self, digest: bytes | None) -> None:
        self.digest = digest
        self._secret = digest if digest is not None else secrets.token_bytes(32)

    def _mac(self, purpose: bytes) -> str:
        """Return the hex HMAC-SHA256 of ``purpose`` under the secret."""
        return hmac.new(self._secret, purpose, hashlib.sha256).hexdigest()

    @property
    def cookie_value(self) -> str:
        """The value the session cookie carries."""
        return self._mac(b"domainfit compare session")

    @property
    def form_token(self) -> str:
        """The hidden field every judgement form carries."""
        return self._mac(b"domainfit compare form")

    def valid_form_token(self, value: str) -> bool:
        """Tell whether a posted form token is this service's (constant-time)."""
        return hmac.compare_digest(value.encode("utf-8"), self.form_token.encode("utf-8"))

    @staticmethod
    def covers(scope: Scope) -> bool:
        """Tell whether the request is for the compare page (``/compare`` or below it)."""
        path = str(scope.get("path", ""))
        return path == PREFIX or path.startswith(PREFIX + "/")

    def has_cookie(self, scope: Scope) -> bool:
        """Tell whether a compare request carries the session cookie (never true for other paths)."""
        raw = _header(scope, b"cookie")
        if raw is None or not self.covers(scope):
            return False
        try:
            jar = SimpleCookie(raw.decode("latin-1"))
        except CookieError:
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie_value.encode())

    def login(self, scope: Scope) -> Response | None:
        """Answer ``GET /compare?token=...`` with the right token: 303 to the page without it, setting the cookie.

        Returns None for any other request (or a wrong token: the bearer check then refuses it).
        """
        if self.digest is None or scope.get("method") != "GET" or scope.get("path") != PREFIX:
            return None
        pairs = parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"), keep_blank_values=True)
        tokens = [value for key, value in pairs if key == "token"]
        if not tokens:
            return None
        given = hashlib.sha256(tokens[0].strip().encode("utf-8")).digest()
        if not hmac.compare_digest(given, self.digest):
            return None
        rest = urlencode([(k, v) for k, v in pairs if k != "token"])
        response = Response(status_code=303, headers={"Location": PREFIX + (f"?{rest}" if rest else "")})
        response.set_cookie(COOKIE, self.cookie_value, path=PREFIX, httponly=True, samesite="strict")
        return response
