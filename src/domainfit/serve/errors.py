"""Request errors: every one is a JSON body ``{"error": message, "error_type": kind}`` with its HTTP status.

The shape follows text-embeddings-inference. Kinds: ``Validation`` (422: a
field missing, of the wrong type or over a cap such as ``k`` or the query
length, or a body that is not JSON), ``PayloadTooLarge`` (413: body size or
``/embed`` batch size over its cap), ``Unauthorized`` (401), ``NotFound`` (404:
an unknown path or model version), ``MethodNotAllowed`` (405), ``BadRequest``
(400) and ``Internal`` (500, with no detail given out). `install_error_handlers`
replaces FastAPI's own handlers (whose bodies are ``{"detail": ...}``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

_log = logging.getLogger("domainfit.serve")

#: error_type by HTTP status for errors raised without one.
_KINDS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Validation",
    500: "Internal",
}


class RequestError(HTTPException):
    """A request the service refuses: status, one-line message and error kind.

    A FastAPI `HTTPException`, so one raised while a route reads its body (the
    body cap) reaches the handler as itself rather than as a parsing error.
    """

    def __init__(self, status_code: int, message: str, error_type: str | None = None) -> None:
        super().__init__(status_code=status_code, detail=message)
        self.error_type = error_type or _KINDS.get(status_code, "BadRequest")


def json_error_response(
    status: int, message: str, error_type: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Return the JSON error response ``{"error", "error_type"}`` for ``status``."""
    kind = error_type or _KINDS.get(status, "BadRequest")
    return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=dict(headers or {}))


def _location(loc: tuple[Any, ...]) -> str:
    """Render a validation error location without its ``body`` prefix: ``k``, ``inputs.3``, or ``body``."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_message(exc: RequestValidationError) -> str:
    """One line naming the first invalid field and what is wrong with it (and how many more there are)."""
    errors = list(exc.errors())
    if not errors:
        return "invalid request"
    first = errors[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{_location(tuple(first.get('loc', ())))}: {message}{more}"


async def _validation(_: Request, exc: Exception) -> Response:
    """422 for a request body or parameter that does not validate."""
    assert isinstance(exc, RequestValidationError)
    return json_error_response(422, validation_message(exc), "Validation")


async def _http(_: Request, exc: Exception) -> Response:
    """Return the JSON body for an HTTP error raised by a route, the router or a middleware."""
    assert isinstance(exc, StarletteHTTPException)
    kind = getattr(exc, "error_type", None)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return json_error_response(exc.status_code, detail, kind, headers=exc.headers)


async def _internal(request: Request, exc: Exception) -> Response:
    """500 with no detail for the client; the exception is logged."""
    _log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_error_response(500, "internal error", "Internal")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error ``app`` answers a JSON ``{error, error_type}`` body."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _internal)
