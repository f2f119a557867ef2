"""``OneRosterServer``: the composition of data, both API versions, auth, faults and admin.

A test and demo tool: the bundle is held in memory and the server binds to loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote_plus

import httpx
from aiohttp import web

from rostersync_oneroster_server import admin
from rostersync_oneroster_server.api import COLLECTIONS, V1P1, V1P2, VersionApi, imsx_error
from rostersync_oneroster_server.auth import AuthError, TokenIssuer, needed_scopes, verify_oauth1
from rostersync_oneroster_server.data import RosterData
from rostersync_oneroster_server.faults import Faults, RequestRecord
from rostersync_oneroster_server.in_process import InProcessTransport
from rostersync_oneroster_server.json_shapes import JSON
from rostersync_oneroster_server.query import QueryError

log = logging.getLogger(__name__)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OneRosterServer:
    """A OneRoster 1.1 + 1.2 REST server over one CSV bundle, in this process's event loop.

    ``oauth1``: consumer key → secret (1.1 only). ``oauth2``: client id → secret (1.2, and 1.1
    bearer tokens). A version with no credentials configured for it is open (no auth).
    """

    def __init__(
        self,
        bundle: Path | None = None,
        *,
        collections: Mapping[str, list[JSON]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        oauth1: Mapping[str, str] | None = None,
        oauth2: Mapping[str, str] | None = None,
        token_ttl: float = 3600.0,
        default_limit: int = 100,
        max_limit: int = 10000,
        oauth1_max_skew: float | None = 600.0,
        oauth1_methods: tuple[str, ...] = ("HMAC-SHA256", "HMAC-SHA1"),
        admin_api: bool = True,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"a test server binds to loopback only, not {host!r}")
        if (bundle is None) == (collections is None):
            raise ValueError("serve a bundle or given collections (one of them)")
        self.host, self._port = host, port
        self.data = RosterData(Path(bundle) if bundle is not None else None)
        self.faults = Faults()
        self.oauth1 = dict(oauth1) if oauth1 else None
        self.tokens = TokenIssuer(dict(oauth2), token_ttl) if oauth2 else None
        self.oauth1_max_skew = oauth1_max_skew
        self.oauth1_methods = oauth1_methods  # what a server restricted to one accepts
        self.requests_served: Counter[str] = Counter()  # by path, faulted requests included
        self.request_log: list[RequestRecord] = []
        self.apis = {
            v: VersionApi(self.data, v, default_limit, max_limit, collections)
            for v in ("1.1", "1.2")
        }
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_post("/token", self._token)
        for api in self.apis.values():
            self.app.router.add_routes(api.routes())
        if admin_api:
            self.app.router.add_routes(admin.routes(self))
        self._runner: web.AppRunner | None = None

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        if self._port == 0:
            self._port = int(self._runner.addresses[0][1])
        for api in self.apis.values():
            api.set_base_url(self.base_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OneRosterServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def v1p1_url(self) -> str:
        return self.base_url + V1P1

    @property
    def v1p2_url(self) -> str:
        return self.base_url + V1P2

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    def reset_counts(self) -> None:
        self.requests_served.clear()
        self.request_log.clear()

    def filters(self, collection: str) -> list[str | None]:
        """The ``filter`` of each request to a collection so far (None: no filter)."""
        return [
            parse_qs(r.query).get("filter", [None])[0]
            for r in self.request_log
            if r.path.endswith("/" + collection)
        ]

    def transport(self, base_url: str = "https://sis.example") -> httpx.AsyncBaseTransport:
        """An httpx transport to this server without a socket (no ``start``): unit tests, and
        a fetcher given it as its HTTP transport. ``base_url``: the hrefs' host."""
        for api in self.apis.values():
            api.set_base_url(base_url)
        return InProcessTransport(self.app, self._middleware)

    # --- request pipeline ----------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        self.requests_served[path] += 1
        entry = RequestRecord(request.method, path, request.query_string, None, None)
        self.request_log.append(entry)
        fault = self.faults.take(path)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "drop":
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing is written: the client sees a reset
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "429":
                retry = str(max(0, int(-(-fault.retry_after // 1))))
                response: web.StreamResponse = imsx_error(
                    429, "server_busy", "too many requests (injected)", **{"Retry-After": retry}
                )
                entry.status = response.status
                return response
            elif fault.kind == "500":
                entry.status = 500
                return imsx_error(500, "internal_server_error", "server error (injected)")
            elif fault.kind == "503":
                entry.status = 503
                return imsx_error(503, "server_busy", "service unavailable (injected)")
        try:
            self._authorize(request)
            response = await handler(request)
        except QueryError as exc:
            response = imsx_error(400, exc.code_minor, exc.description)
        except AuthError as exc:
            if exc.status == 403:
                response = imsx_error(403, "forbidden", exc.description)
            else:
                challenge = "Bearer" if path.startswith(V1P2) else 'OAuth realm="oneroster"'
                response = imsx_error(
                    401, "unauthorisedrequest", exc.description, **{"WWW-Authenticate": challenge}
                )
        except web.HTTPNotFound:
            if path.startswith("/_admin"):
                raise
            response = imsx_error(404, "unknownobject", f"no such resource: {path}")
        entry.status = response.status
        return response

    def _authorize(self, request: web.Request) -> None:
        path = request.path
        version = (
            "1.1" if path.startswith(V1P1 + "/") else "1.2" if path.startswith(V1P2 + "/") else None
        )
        if version is None:
            return
        if (version == "1.2" and self.tokens is None) or (
            version == "1.1" and self.tokens is None and self.oauth1 is None
        ):
            return
        header = request.headers.get("Authorization", "")
        scheme = header.split(" ", 1)[0].rstrip(",").lower()
        if scheme == "bearer" and self.tokens is not None:
            collection = path.split("/")[4 if version == "1.1" else 5]
            if collection not in COLLECTIONS:
                collection = "users"  # unknown paths answer 404 once authenticated
            self.tokens.check(header.split(" ", 1)[1].strip(), needed_scopes(collection, version))
        elif scheme == "oauth" and version == "1.1" and self.oauth1 is not None:
            url = f"{request.scheme}://{request.host}{request.raw_path}"
            verify_oauth1(
                request.method, url, header, self.oauth1,
                max_skew=self.oauth1_max_skew, methods=self.oauth1_methods,
            )  # fmt: skip
        else:
            raise AuthError("missing or unsupported Authorization header")

    async def _token(self, request: web.Request) -> web.Response:
        """OAuth 2 client credentials (RFC 6749 §4.4): HTTP Basic or form client auth."""
        form = await request.post()
        if self.tokens is None:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ":"
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        scope = form.get("scope")
        try:
            token = self.tokens.issue(client_id, secret, str(scope) if scope else None)
        except AuthError as exc:
            status = 401 if exc.description == "invalid_client" else 400
            headers = {"WWW-Authenticate": "Basic"} if status == 401 else {}
            return web.json_response({"error": exc.description}, status=status, headers=headers)
        body = {
            "access_token": token.value,
            "token_type": "bearer",
            "expires_in": int(self.tokens.ttl),
            "scope": " ".join(sorted(token.scopes)),
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})
