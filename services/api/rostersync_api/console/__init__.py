"""The web console: server-rendered pages for district operators and support, on the admin API.

Served by the API's process under ``/console`` with the API's tokens (``session``), every form
CSRF-checked (``csrf``). A page's actions call the API's own route functions (a hold decided here
is the API's decision: same checks, same audit, same command), so the console adds pages, never a
second way of doing things. htmx (vendored in ``static/``) polls a running run and filters tables;
every page works as plain HTML too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from rostersync_api.console import (
    pages_audit,
    pages_districts,
    pages_holds,
    pages_runs,
    pages_sign_in,
    pages_sources,
    pages_uploads,
    render,
)
from rostersync_api.console.session import PREFIX, NotSignedInError

TITLES = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 409: "Already decided",
          413: "Too large", 422: "Not accepted"}  # fmt: skip


def error_page(request: Request, status: int, message: str) -> Response | None:
    """The console's errors as pages; None for the API's requests (they stay JSON)."""
    if not request.url.path.startswith(PREFIX):
        return None
    title = TITLES.get(status, "Something went wrong")
    return render.page(request, "error.html", None, status, title=title, message=message)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotSignedInError)
    async def sign_in_needed(request: Request, _: NotSignedInError) -> Response:
        if request.headers.get("hx-request"):  # htmx: send the whole page, not a fragment
            return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/sign-in"})
        return render.see_other(f"{PREFIX}/sign-in")

    static = Path(__file__).parent / "static"
    app.mount(f"{PREFIX}/static", StaticFiles(directory=static), name="console-static")
    for pages in (pages_sign_in, pages_districts, pages_runs, pages_holds, pages_uploads,
                  pages_sources, pages_audit):  # fmt: skip
        app.include_router(pages.router, include_in_schema=False)
