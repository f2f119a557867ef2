"""Sign in with an API token, sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from rostersync_api.auth import EXPIRED, TOKEN_PREFIX, Principal, standing_of
from rostersync_api.console import csrf, render, session
from rostersync_api.console.session import PREFIX, Session
from rostersync_api.state import state_of

router = APIRouter(prefix=PREFIX)


def _form(request: Request, status: int = 200, problem: str = "") -> Response:
    value = csrf.new_sign_in_value()
    answer = render.page(request, "sign_in.html", None, status, csrf_token=value, problem=problem)
    session.set_cookie(answer, request, csrf.SIGN_IN_COOKIE, value, max_age=3600)
    return answer


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _form(request)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    csrf.check(request.cookies.get(csrf.SIGN_IN_COOKIE, ""), csrf_token)
    token = token.strip()
    principal = (
        await standing_of(state_of(request), token) if token.startswith(TOKEN_PREFIX) else None
    )
    if principal == EXPIRED:
        return _form(request, 401, "That token has expired: ask for a new one.")
    if not isinstance(principal, Principal):
        return _form(request, 401, "That token is not valid: unknown, revoked or mistyped.")
    answer = render.see_other(f"{PREFIX}/")
    session.start(answer, request, token)
    answer.delete_cookie(csrf.SIGN_IN_COOKIE, path=PREFIX)
    return answer


@router.post("/sign-out")
async def sign_out(_: Annotated[Session, Depends(session.posting("viewer"))]) -> Response:
    answer = render.see_other(f"{PREFIX}/sign-in")
    session.end(answer)
    return answer
