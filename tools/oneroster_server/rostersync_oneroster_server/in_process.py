"""The server without a socket: an httpx transport that hands each request to the aiohttp
application in the caller's event loop (routes, middleware, faults and request log included).

For unit tests and in-process pipelines (the fetcher's ``http_transport``); the HTTP tests and the
demo bind a port instead (``OneRosterServer.start``). A ``drop`` fault reads as a connection
closed without a response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import httpx
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class InProcessTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: web.Application, middleware: Middleware) -> None:
        self._app = app
        self._middleware = middleware

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = CIMultiDict(request.headers.multi_items())
        headers.setdefault("Host", request.url.netloc.decode("ascii"))
        target = request.url.raw_path.decode("ascii")

        def mocked(**extra: Any) -> web.Request:
            return make_mocked_request(
                request.method, target, headers=headers, app=self._app,
                payload=_payload(body), **extra,
            )  # fmt: skip

        match = await self._app.router.resolve(mocked())
        try:
            response = await self._middleware(mocked(match_info=match), match.handler)
        except web.HTTPException as exc:  # aiohttp's own answers (an unknown admin path)
            response = exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the caller is being cancelled, not a dropped connection
            raise httpx.RemoteProtocolError("server closed the connection (injected)") from None
        if not isinstance(response, web.Response):
            raise TypeError(f"in process: a {type(response).__name__} cannot be relayed")
        content = response.body if isinstance(response.body, bytes) else b""
        return httpx.Response(
            response.status, headers=list(response.headers.items()), content=content
        )


def _payload(body: bytes) -> streams.StreamReader:
    """The request body as aiohttp reads it (``await request.post()`` for /token). The reader
    wants a protocol only to pause a socket's reading: there is no socket, a stand-in will do."""
    reader = streams.StreamReader(
        mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop()
    )
    reader.feed_data(body)
    reader.feed_eof()
    return reader
