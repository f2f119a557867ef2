"""Who is signed in to the console: the API token kept in an HttpOnly, SameSite=Strict cookie.

The token is looked up the API's way (``auth.principal_of``): same tokens, same roles, same
revocation, same tenant scope. A page needing more than the token's role answers 403; a tenant
outside the token's, 404 (the pages call ``known_tenant`` as the API does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response

from rostersync_api.auth import RANK, TOKEN_PREFIX, Principal, Role, principal_of
from rostersync_api.console import csrf
from rostersync_api.errors import ApiError
from rostersync_api.state import state_of

COOKIE = "rostersync_console"
PREFIX = "/console"


class NotSignedInError(Exception):
    """No valid session: the page sends the browser to the sign-in page."""


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str

    def can(self, role: Role) -> bool:
        return RANK[self.principal.role] >= RANK[role]


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip


def start(response: Response, request: Request, token: str) -> None:
    set_cookie(response, request, COOKIE, token, max_age=12 * 3600)


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX)


async def current(request: Request) -> Session | None:
    token = request.cookies.get(COOKIE, "")
    if not token.startswith(TOKEN_PREFIX):
        return None
    principal = await principal_of(state_of(request), token)
    return None if principal is None else Session(principal, csrf.token_for(token))


def allowed(session: Session, minimum: Role) -> Session:
    if not session.can(minimum):
        raise ApiError(403, "forbidden", f"this needs the {minimum} role;"
                       f" your token is {session.principal.role}")  # fmt: skip
    return session


def viewing(minimum: Role = "viewer") -> Callable[[Request], Awaitable[Session]]:
    """A page's dependency: the session, if its role is at least ``minimum``."""

    async def signed_in(request: Request) -> Session:
        session = await current(request)
        if session is None:
            raise NotSignedInError
        return allowed(session, minimum)

    return signed_in


def posting(minimum: Role) -> Callable[[Request], Awaitable[Session]]:
    """A form's dependency: signed in, the CSRF token right, then the role (403 otherwise)."""

    async def checked(request: Request) -> Session:
        session = await current(request)
        if session is None:
            raise NotSignedInError
        csrf.check(session.csrf_token, await csrf.sent(request))
        return allowed(session, minimum)

    return checked
