"""Every error the API answers is JSON: ``{"error": {"code": …, "message": …}}``.

``code`` is stable (clients branch on it), ``message`` is for people. Validation errors name the
field and what was expected, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

ErrorCode = Literal[
    "unauthorized",  # 401: no token, or not a valid one
    "token_expired",  # 401: a valid token past its expiry
    "forbidden",  # 403: the token's role may not do this
    "not_found",  # 404: no such thing, or not within the token's tenants
    "conflict",  # 409: exists already, decided already
    "invalid_request",  # 422: the body or the query does not fit
    "payload_too_large",  # 413
    "rate_limited",  # 429: the token's requests are over its rate (Retry-After says when)
    "unavailable",  # 503: Kafka or PostgreSQL does not answer
]


class ApiError(Exception):
    def __init__(
        self, status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


# The web console's pages answer errors as pages: it returns one for its own requests, None
# for the API's (which stay JSON, exactly as above).
HtmlErrors = Callable[[Request, int, str], Response | None]


def install(app: FastAPI, html: HtmlErrors | None = None) -> None:
    def page(request: Request, status: int, message: str) -> Response | None:
        return html(request, status, message) if html is not None else None

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        if (shown := page(request, exc.status, exc.message)) is not None:
            return shown
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return JSONResponse(body(exc.code, exc.message), exc.status, headers=headers | exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()[:20]
        ]
        if (shown := page(request, 422, "; ".join(problems))) is not None:
            return shown
        return JSONResponse(body("invalid_request", "; ".join(problems)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if (shown := page(request, exc.status_code, str(exc.detail))) is not None:
            return shown
        code = {404: "not_found", 405: "invalid_request", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_request"
        )
        return JSONResponse(body(code, str(exc.detail)), exc.status_code)
