"""The request body cap: a pure ASGI middleware answering 413 before the application sees too large a body.

A declared ``Content-Length`` over the cap is refused at once, without reading
the body. A body sent without a length (chunked) is counted as it streams: the
chunk that crosses the cap raises `RequestError` (413), which the
application's error handler turns into the JSON error body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domainfit.serve.errors import RequestError, json_error_response


def _declared_length(scope: Scope) -> int | None:
    """Return the request's ``Content-Length`` (None when absent or not a number)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than ``max_bytes`` with 413 ``PayloadTooLarge``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        """Return the error message."""
        return f"request body larger than the cap of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the streamed body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await json_error_response(413, self._too_large(), "PayloadTooLarge")(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise RequestError(413, self._too_large(), "PayloadTooLarge")
            return message

        await self.app(scope, counted, send)
