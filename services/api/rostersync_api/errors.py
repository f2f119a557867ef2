"""Every error the API answers is JSON: ``{"error": {"code": …, "message": …}}``.

``code`` is stable (clients branch on it), ``message`` is for people. Validation errors name the
field and what was expected, never a traceback.
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ErrorCode = Literal[
    "unauthorized",  # 401: no token, or not a valid one
    "forbidden",  # 403: the token's role may not do this
    "not_found",  # 404: no such thing, or not within the token's tenants
    "conflict",  # 409: exists already, decided already
    "invalid_request",  # 422: the body or the query does not fit
    "payload_too_large",  # 413
    "unavailable",  # 503: Kafka or PostgreSQL does not answer
]


class ApiError(Exception):
    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body(exc.code, exc.message), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()[:20]
        ]
        return JSONResponse(body("invalid_request", "; ".join(problems)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "invalid_request"}.get(exc.status_code, "invalid_request")
        return JSONResponse(body(code, str(exc.detail)), exc.status_code)
