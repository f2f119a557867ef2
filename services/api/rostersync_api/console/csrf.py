"""CSRF protection for the console's forms: a token tied to the session, checked on every POST.

Signed in, the token is an HMAC keyed by the session's API token (the HttpOnly cookie), so it needs
no server-side state, is the same in every process, and a page of another origin can neither read
the cookie nor compute the token. It is not the token's SHA-256 (``api_tokens`` keeps that): a
leaked table gives no CSRF token. Before sign-in, the sign-in form is protected the double-submit
way: a random value in a short-lived cookie and in the form, which must match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from rostersync_api.errors import ApiError

FIELD = "csrf_token"
HEADER = "x-csrf-token"  # htmx requests send it as a header (hx-headers on <body>)
SIGN_IN_COOKIE = "rostersync_console_sign_in"


def token_for(session: str) -> str:
    return hmac.new(session.encode(), b"rostersync console csrf", hashlib.sha256).hexdigest()


def new_sign_in_value() -> str:
    return secrets.token_urlsafe(32)


async def sent(request: Request) -> str:
    """The token a POST carries: its header, else its form field."""
    if header := request.headers.get(HEADER):
        return header
    value = (await request.form()).get(FIELD)
    return value if isinstance(value, str) else ""


def check(expected: str, given: str) -> None:
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise ApiError(
            403, "forbidden", "the form is out of date or not from this console: reload the page"
        )
