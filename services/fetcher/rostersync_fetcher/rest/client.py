"""HTTP for one REST source: URLs, authentication, retries with backoff, and one page per call.

Retries: 429, 5xx, time-outs and connection errors are retried with exponential backoff and full
jitter (a random wait in [0, min(cap, base·2^attempt)]), or after exactly what ``Retry-After`` asks
(seconds or an HTTP date, capped); after ``max_attempts`` the request fails and so does the run.
A 401 is retried once with fresh credentials (OAuth2: a new token). Other 4xx fail at once.
Every request holds the tenant's semaphore, so a tenant never has more than ``max_concurrency``
requests in flight, whatever the number of collections or pages being fetched.

Limits (each fails the request, and so the run, with the reason): an answer's body is read as a
stream and cut at ``max_page_bytes`` (a ``Content-Length`` above it is refused before reading);
``request_deadline_seconds`` bounds all of one request — every attempt's connection, headers and
whole body, and the waits between attempts — while ``timeout_seconds`` bounds each read only (a
server trickling a byte every few seconds never trips it, the deadline does).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
from rostersync_libs.metrics import REST_REQUESTS, REST_RETRIES
from rostersync_libs.tenants import ApiSource

from rostersync_fetcher.rest.auth import Authenticator
from rostersync_fetcher.rest.body import Received, read_body
from rostersync_fetcher.rest.errors import FetchError, ForbiddenError, LimitError, TransientError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 0.5
    cap_seconds: float = 60.0
    max_retry_after_seconds: float = 600.0  # a server asking for more is not waited for longer

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^attempt)] (attempt counts from 0)."""
        return rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))

    def wait(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_seconds)
        return self.backoff(attempt, rng)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int | None  # X-Total-Count, when the server sends it (a hint)
    has_next: bool  # a Link rel="next" (a hint)


def _total(response: httpx.Response) -> int | None:
    value = response.headers.get("x-total-count", "").strip()
    return int(value) if value.isdigit() else None


def _description(response: httpx.Response) -> str:
    """The server's own words on an error (imsx_description), short; never the whole body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        text = body.get("imsx_description") or body.get("error") or ""
        return f": {str(text)[:200]}" if text else ""
    return ""


def filter_query(value: str) -> str:
    """A filter expression URL-encoded whole (spaces %20, quotes %27, ``>`` %3E)."""
    return quote(value, safe="")


class OneRosterClient:
    """GETs the collections of one source."""

    def __init__(
        self,
        source: ApiSource,
        http: httpx.AsyncClient,
        auth: Authenticator,
        semaphore: asyncio.Semaphore,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        tenant: str = "",
    ) -> None:
        self.source = source
        # Metrics, bound once: requests by status (the tenant's source), retries.
        self._tenant = tenant
        self._retries = REST_RETRIES.labels(tenant, source.id)
        self._http = http
        self._auth = auth
        self._semaphore = semaphore
        self.policy = policy or RetryPolicy(max_attempts=source.max_attempts)
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._clock = clock
        self.requests = 0

    def url(self, collection: str, *, offset: int, limit: int, filter_: str | None = None) -> str:
        query = f"limit={limit}&offset={offset}"
        if filter_:
            query += f"&filter={filter_query(filter_)}"
        return f"{self.source.api_root}/{collection}?{query}"

    async def page(
        self, collection: str, *, offset: int, limit: int, filter_: str | None = None
    ) -> Page:
        response = await self.get(self.url(collection, offset=offset, limit=limit, filter_=filter_))
        try:
            body = response.json()
        except ValueError as exc:
            raise FetchError(f"GET /{collection}: the answer is not JSON") from exc
        items = body.get(collection) if isinstance(body, dict) else None
        if items is None and isinstance(body, dict) and len(body) == 1:
            items = next(iter(body.values()))  # a server naming the key otherwise: take the first
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise FetchError(f"GET /{collection}: the answer has no {collection!r} list")
        return Page(items=items, total=_total(response), has_next="next" in response.links)

    async def get(self, url: str) -> httpx.Response:
        """One GET, retried as the policy says; raises FetchError when it cannot succeed."""
        path = url.removeprefix(self.source.api_root)
        deadline = _Deadline(self.source.request_deadline_seconds, self._clock)
        refreshed = False
        attempt = 0
        last: Exception | None = None
        while attempt < self.policy.max_attempts:
            try:
                response = await self._send(url, deadline)
                if response.status_code == 401 and not refreshed and await self._auth.invalidate():
                    refreshed = True  # once, with new credentials; not counted as an attempt
                    continue
                status = response.status_code
                if status == 429 or status >= 500:
                    raise TransientError(
                        f"HTTP {status}", retry_after_seconds(response.headers.get("retry-after"))
                    )
                if status == 403:
                    raise ForbiddenError(f"GET {path} answered HTTP 403{_description(response)}")
                if status >= 400:
                    raise FetchError(f"GET {path} answered HTTP {status}{_description(response)}")
                return response
            except _PastDeadline as exc:
                raise FetchError(
                    f"GET {path}: no complete answer within {deadline.seconds:g} s"
                    f" (request_deadline_seconds; attempt {attempt + 1}{exc.detail})"
                ) from None
            except LimitError as exc:
                raise FetchError(f"GET {path}: {exc}") from None
            except TransientError as exc:
                last, retry_after = exc, exc.retry_after
            except httpx.TimeoutException as exc:
                last, retry_after = exc, None
            except httpx.TransportError as exc:
                last, retry_after = exc, None
            attempt += 1
            if attempt < self.policy.max_attempts:
                self._retries.inc()
                wait = self.policy.wait(attempt - 1, retry_after, self._rng)
                if wait >= deadline.left():
                    reason = str(last) or type(last).__name__
                    raise FetchError(
                        f"GET {path}: gave up after {attempt} attempts ({reason}): waiting"
                        f" {wait:.1f} s more would pass request_deadline_seconds"
                        f" ({deadline.seconds:g} s)"
                    )
                await self._sleep(wait)
        reason = str(last) or type(last).__name__
        raise FetchError(f"GET {path}: gave up after {attempt} attempts ({reason})")

    async def _send(self, url: str, deadline: _Deadline) -> httpx.Response:
        async with self._semaphore:
            request = self._http.build_request("GET", url, headers={"Accept": "application/json"})
            deadline.start()
            left = deadline.left()
            if left <= 0:
                raise _PastDeadline("")
            received = Received()
            try:
                async with asyncio.timeout(left):
                    # A token request (OAuth 2) counts against the deadline too.
                    await self._auth.authorize(request)
                    self.requests += 1
                    response = await self._sent(request)
                    try:
                        body = await read_body(response, self.source.max_page_bytes, received)
                    finally:
                        await response.aclose()
            except TimeoutError:
                got = f", {received.bytes} bytes of the answer received" if received.bytes else ""
                raise _PastDeadline(got) from None
            # The body as read (decoded): the answer no longer has a content encoding.
            headers = [
                (k, v)
                for k, v in response.headers.multi_items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
            ]
            return httpx.Response(
                response.status_code, headers=headers, content=body, request=request
            )

    async def _sent(self, request: httpx.Request) -> httpx.Response:
        """The request sent (its body still to read), counted by the answer's status."""
        try:
            response = await self._http.send(request, stream=True)
        except BaseException:
            REST_REQUESTS.labels(self._tenant, self.source.id, "error").inc()
            raise
        REST_REQUESTS.labels(self._tenant, self.source.id, str(response.status_code)).inc()
        return response


class _PastDeadline(Exception):  # noqa: N818 (internal signal, turned into a FetchError)
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Deadline:
    """The time left for one request, all attempts and waits included, counted from its first
    attempt (waiting for the tenant's semaphore before that does not count)."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end: float | None = None

    def start(self) -> None:
        if self._end is None:
            self._end = self._clock() + self.seconds

    def left(self) -> float:
        return self.seconds if self._end is None else self._end - self._clock()
