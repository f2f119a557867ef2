"""The upload size limit, kept while an upload's body arrives, whether or not it says its length.

FastAPI parses a multipart body (its files spooled to temporary files) before the route runs, so
a check in the route comes after the whole body was read: a chunked upload (no Content-Length)
could fill the disk first. This middleware counts an upload's body as it is received and stops
it with 413 (``payload_too_large``) at once when its Content-Length is over the limit, and at the
first chunk past the limit otherwise. The error is raised where the body is read, so the
parser closes its temporary files, the route never runs and nothing is left in the upload
folder; the app's error handlers answer it (JSON for the API, a page for the console).
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API's upload route and the console's upload form.
UPLOAD_PATHS = re.compile(r"^(/api/v1/tenants/[^/]+/uploads|/console/upload)/?$")
# Room for the multipart framing around the bundle (boundaries, part headers, a source field).
FRAMING = 1 << 16


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the bundle is over the limit of {limit:,} bytes")


class UploadLimit:
    """ASGI middleware: an upload's body is refused past ``limit`` bytes (plus framing)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not UPLOAD_PATHS.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        allowed = self.limit + FRAMING
        declared = Headers(scope=scope).get("content-length", "")
        too_long = declared.isdigit() and int(declared) > allowed
        received = 0

        async def counted() -> Message:
            nonlocal received
            if too_long:  # said so: refused before a byte of it is read
                raise BodyTooLarge(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)
