"""The REST source's limits, each ending the run failed with the reason, in bounded time: a server
paging forever, one ignoring offset, a page too large (declared or streamed), a server trickling
bytes under the per-read timeout, and a Retry-After past the request's deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast
from uuid import uuid4

import httpx
import pytest
from rostersync_fetcher.rest.client import OneRosterClient, RetryPolicy
from rostersync_fetcher.rest.errors import FetchError
from rostersync_fetcher.rest.run import ApiRun
from rostersync_fetcher.rest.state import MemoryStateStore
from rostersync_libs.events import RecordEvent, RunEnd
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import ApiSource, OAuth1Auth, Tenant
from rostersync_libs.topics import Topics

from tests.fakes import RecordingProducer

TOPICS = Topics("t.")
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def source(base_url: str = "https://sis.example", **limits: Any) -> ApiSource:
    return ApiSource(
        id="api",
        kind="oneroster-api",
        base_url=base_url,
        auth=OAuth1Auth(kind="oauth1", key="k", secret_env="SIS_SECRET"),
        **limits,
    )


class NoAuth:
    async def authorize(self, request: httpx.Request) -> None:
        return None

    async def invalidate(self) -> bool:
        return False


class Recorder:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def client_for(
    api: ApiSource,
    http: httpx.AsyncClient,
    *,
    attempts: int = 3,
    recorder: Recorder | None = None,
) -> OneRosterClient:
    return OneRosterClient(
        api,
        http,
        NoAuth(),
        asyncio.Semaphore(2),
        policy=RetryPolicy(max_attempts=attempts, base_seconds=0.01, cap_seconds=0.02),
        sleep=(recorder or Recorder()).sleep,
        rng=random.Random(1),
    )


async def run_api(api: ApiSource, http: httpx.AsyncClient) -> tuple[RunEvent, RecordingProducer]:
    producer = RecordingProducer()
    result = await ApiRun(
        producer=cast(Any, producer),
        topics=TOPICS,
        tenant=Tenant(id="d1", name="D", sources=[api]),
        source=api,
        run_id=uuid4(),
        client=client_for(api, http),
        store=MemoryStateStore(),
        clock=lambda: NOW,
    ).run()
    return result.event, producer


def endless(request: httpx.Request) -> httpx.Response:
    """Every page full, with records never seen before: the collection never ends."""
    offset = int(request.url.params["offset"])
    limit = int(request.url.params["limit"])
    collection = request.url.path.rsplit("/", 1)[-1]
    items = [
        {"sourcedId": f"x{i}", "name": "X", "type": "school"} for i in range(offset, offset + limit)
    ]
    return httpx.Response(200, json={collection: items})


async def test_a_server_paging_forever_fails_the_run_at_the_page_limit() -> None:
    api = source(page_size=10, max_pages_per_collection=5)
    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endless)) as http:
        event, producer = await run_api(api, http)
    assert time.monotonic() - started < 5
    assert event.phase is RunPhase.FAILED
    assert event.reason == (
        "https://sis.example/ims/oneroster/v1p1: GET /orgs: more than 5 pages"
        " (max_pages_per_collection); the server was still paging at offset 50"
    )
    records = [e for e in producer.events(TOPICS.fetched) if isinstance(e, RecordEvent)]
    assert len(records) == 50  # five pages, then nothing more
    markers = [e.marker for e in producer.events(TOPICS.fetched) if isinstance(e, RunEnd)]
    assert markers
    assert all(m is not None and m.aborted for m in markers)


async def test_a_server_ignoring_offset_is_caught_on_the_third_same_page() -> None:
    requests: list[int] = []

    def same_page(request: httpx.Request) -> httpx.Response:
        requests.append(int(request.url.params["offset"]))
        return httpx.Response(200, json={"orgs": [{"sourcedId": f"o{i}"} for i in range(10)]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(same_page)) as http:
        event, _ = await run_api(source(page_size=10), http)
    assert event.phase is RunPhase.FAILED
    assert event.reason is not None
    assert event.reason.endswith(
        "GET /orgs: the same 10 records came back on 3 pages in a row (up to offset 20);"
        " the server ignores offset?"
    )
    assert requests == [0, 10, 20]


async def test_a_page_declared_larger_than_the_limit_is_not_read_nor_retried() -> None:
    asked: list[str] = []

    def huge(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=b"[" + b" " * (2 << 20) + b"]")

    async with httpx.AsyncClient(transport=httpx.MockTransport(huge)) as http:
        client = client_for(source(max_page_bytes=1 << 20), http)
        with pytest.raises(FetchError) as caught:
            await client.page("orgs", offset=0, limit=10)
    assert str(caught.value) == (
        "GET /orgs?limit=10&offset=0: the answer is 2097154 bytes (Content-Length), more than"
        " max_page_bytes (1048576); not read"
    )
    assert len(asked) == 1


async def test_a_streamed_page_is_cut_at_the_limit_without_reading_the_rest() -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"orgs": ['
        for _ in range(10_000):  # 640 MB if read to the end
            sent += 1
            yield b'{"sourcedId": "o"},' * 3000
        yield b"]}"

    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())  # chunked: no Content-Length

    async with httpx.AsyncClient(transport=httpx.MockTransport(streamed)) as http:
        client = client_for(source(max_page_bytes=1 << 20), http)
        with pytest.raises(FetchError, match=r"passed max_page_bytes \(1048576 bytes\)"):
            await client.page("orgs", offset=0, limit=10)
    assert sent < 30  # ~1 MiB read, not 640 MB


async def test_a_gzipped_page_is_limited_by_its_unpacked_size() -> None:
    import gzip

    packed = gzip.compress(b'{"orgs": [' + b" " * (4 << 20) + b"]}")

    def bomb(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=packed, headers={"Content-Encoding": "gzip"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(bomb)) as http:
        client = client_for(source(max_page_bytes=1 << 20), http)
        with pytest.raises(FetchError, match="max_page_bytes"):
            await client.page("orgs", offset=0, limit=10)


async def test_a_page_under_the_limit_reads_as_before_links_and_counts_kept() -> None:
    def fine(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"orgs": [{"sourcedId": "o1"}]},
            headers={"X-Total-Count": "7", "Link": '<https://sis.example/x>; rel="next"'},
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(fine)) as http:
        page = await client_for(source(max_page_bytes=1024), http).page("orgs", offset=0, limit=1)
    assert (page.items, page.total, page.has_next) == ([{"sourcedId": "o1"}], 7, True)


async def test_a_retry_after_past_the_deadline_gives_up_at_once() -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "120"})

    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(busy)) as http:
        client = client_for(source(request_deadline_seconds=30), http, recorder=recorder)
        with pytest.raises(FetchError) as caught:
            await client.page("orgs", offset=0, limit=10)
    assert str(caught.value) == (
        "GET /orgs?limit=10&offset=0: gave up after 1 attempts (HTTP 429): waiting 120.0 s more"
        " would pass request_deadline_seconds (30 s)"
    )
    assert recorder.slept == []


async def trickling_server(length: int = 100_000) -> tuple[asyncio.Server, list[int]]:
    """Answers headers at once, then one byte of its body every 0.2 s (never a 1 s silence)."""
    sent: list[int] = [0]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % length
            )
            for _ in range(length):
                writer.write(b" ")
                await writer.drain()
                sent[0] += 1
                await asyncio.sleep(0.2)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0), sent


async def test_a_trickling_server_is_cut_at_the_deadline_not_held_by_the_read_timeout() -> None:
    server, sent = await trickling_server()
    port = server.sockets[0].getsockname()[1]
    api = source(
        f"http://127.0.0.1:{port}", timeout_seconds=1, request_deadline_seconds=2, max_attempts=3
    )
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(api.timeout_seconds)) as http:
            event, _ = await run_api(api, http)
    finally:
        server.close()
        await server.wait_closed()
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed  # the deadline, not 100000 bytes at 5 per second
    assert event.phase is RunPhase.FAILED
    assert event.reason is not None
    assert event.reason.startswith(
        f"http://127.0.0.1:{port}/ims/oneroster/v1p1: GET /orgs?limit=1000&offset=0:"
        " no complete answer within 2 s (request_deadline_seconds; attempt 1, "
    )
    assert event.reason.endswith(" bytes of the answer received)")
    assert 5 <= sent[0] <= 15


def oauth2_client(api: ApiSource, http: httpx.AsyncClient) -> OneRosterClient:
    from pydantic import SecretStr
    from rostersync_fetcher.rest.auth import OAuth2ClientCredentials
    from rostersync_libs.tenants import OAuth2Auth

    auth = OAuth2Auth(
        kind="oauth2", token_url=f"{api.base_url}/token", client_id="c", secret_env="S"
    )
    return OneRosterClient(
        api,
        http,
        OAuth2ClientCredentials(auth, SecretStr("s"), http),
        asyncio.Semaphore(2),
        policy=RetryPolicy(max_attempts=1),
    )


async def test_a_token_answer_is_cut_at_its_limit_and_fails_the_request() -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):
            sent += 1
            yield b'{"access_token": "' + b"x" * 65_536

    def endless_token(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/token"
        return httpx.Response(200, content=body())

    async with httpx.AsyncClient(transport=httpx.MockTransport(endless_token)) as http:
        client = oauth2_client(source(), http)
        with pytest.raises(FetchError) as caught:
            await client.page("orgs", offset=0, limit=10)
    assert str(caught.value) == (
        "token endpoint: the answer passed the limit of a token answer (65536 bytes);"
        " reading stopped there"
    )
    assert sent <= 2


async def test_a_trickling_token_endpoint_is_cut_at_the_requests_deadline() -> None:
    server, sent = await trickling_server(length=1000)  # a token answer's size, at 5 bytes/s
    port = server.sockets[0].getsockname()[1]
    api = source(f"http://127.0.0.1:{port}", timeout_seconds=1, request_deadline_seconds=2)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(api.timeout_seconds)) as http:
            with pytest.raises(FetchError, match="no complete answer within 2 s"):
                await oauth2_client(api, http).page("orgs", offset=0, limit=10)
    finally:
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 5  # not 1000 bytes at 5 per second
    assert 5 <= sent[0] <= 15
