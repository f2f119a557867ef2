"""Pages from the Jinja2 templates (autoescaped), with the headers every console answer carries."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from rostersync_api.console.session import Session

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Everything is served by the API itself: no CDN, no inline script, no framing by another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment:%Y-%m-%d %H:%M:%S %Z}".strip()


def duration(seconds: float | timedelta | None) -> str:
    if seconds is None:
        return "—"
    total = int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
    minutes, secs = divmod(total, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def from_json(value: str | bytes | list[Any] | None) -> Any:
    """A jsonb column as asyncpg returns it (text), as its value."""
    return orjson.loads(value) if isinstance(value, str | bytes) else (value or [])


templates.env.filters["when"] = when
templates.env.filters["fromjson"] = from_json
templates.env.filters["duration"] = duration


def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def page(
    request: Request, name: str, session: Session | None, status: int = 200, **context: Any
) -> Response:
    """A template with the session's role and CSRF token (every form of every page needs it)."""
    shared = {
        "session": session,
        "csrf_token": session.csrf_token if session else context.pop("csrf_token", ""),
        "can_operate": session is not None and session.can("operator"),
        "can_admin": session is not None and session.can("admin"),
    }
    return secured(templates.TemplateResponse(request, name, {**shared, **context}, status))


def see_other(url: str) -> Response:
    """After a POST: the browser gets the resulting page (a reload does not post again)."""
    return secured(RedirectResponse(url, status_code=303))
