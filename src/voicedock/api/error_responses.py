"""Every response that is not a success is ``{"error": ..., "message": ...}``.

``errors`` (the application's outermost middleware) turns ``ApiError``s, aiohttp's own HTTP
exceptions (unknown path 404, wrong method 405, body too large 413), a store that is unavailable
for now (503 with ``Retry-After``: another process holds the SQLite file, a PostgreSQL failover)
and unexpected exceptions (500, no traceback in the body) into that shape.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from voicedock.errors import ApiError, StoreUnavailable
from voicedock.store.errors import DuplicateKeyError

log = logging.getLogger("voicedock.api")

_HTTP_ERRORS = {
    400: "Bad request",
    401: "Invalid API key",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Too many requests",
}


def error_response(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=exc.headers())
    except StoreUnavailable as exc:
        log.warning("%s answered 503: store unavailable: %s", request.method, exc)
        response = error_response(
            503, "Service unavailable", "the database is busy or unreachable; retry shortly"
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    except DuplicateKeyError:
        # A unique constraint caught what a check-then-insert race let through.
        return error_response(409, "Conflict", "the resource already exists")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status if exc.status in _HTTP_ERRORS or exc.status >= 500 else 400
        error = _HTTP_ERRORS.get(status, "Internal error")
        response = error_response(status, error, exc.reason)
        if status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:
        # The client went away while its body was read (its own timeout): nobody reads this.
        log.info(
            "%s %s: the client closed the connection mid-request", request.method, request.path
        )
        return error_response(400, "Bad request", "the request did not arrive whole")
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "Internal error", "an unexpected error occurred")
