"""Paging stop conditions and retries (backoff, Retry-After, giving up) of the REST client."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from rostersync_fetcher.rest.client import (
    OneRosterClient,
    RetryPolicy,
    filter_query,
    retry_after_seconds,
)
from rostersync_fetcher.rest.errors import FetchError
from rostersync_fetcher.rest.paging import pages
from rostersync_libs.tenants import ApiSource, OAuth1Auth

SOURCE = ApiSource(
    id="api",
    kind="oneroster-api",
    base_url="https://sis.example",
    auth=OAuth1Auth(kind="oauth1", key="k", secret_env="X"),
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
    handler: Any, *, attempts: int = 4, recorder: Recorder | None = None, concurrency: int = 2
) -> tuple[OneRosterClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = OneRosterClient(
        SOURCE,
        http,
        NoAuth(),
        asyncio.Semaphore(concurrency),
        policy=RetryPolicy(max_attempts=attempts, base_seconds=1.0, cap_seconds=8.0),
        sleep=(recorder or Recorder()).sleep,
        rng=random.Random(7),
    )
    return client, http


def collection(n: int, *, cap: int | None = None, total: bool = False, link: bool = False) -> Any:
    """A server of ``n`` orgs; ``cap`` limits its page size as Ed-Fi's does."""
    seen: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        seen.append((offset, limit))
        size = min(limit, cap or limit)
        items = [{"sourcedId": f"o{i}"} for i in range(offset, min(n, offset + size))]
        headers = {}
        if total:
            headers["X-Total-Count"] = str(n)
        if link and offset + size < n:
            headers["Link"] = f'<https://sis.example/x?offset={offset + size}>; rel="next"'
        return httpx.Response(200, json={"orgs": items}, headers=headers)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


async def collect(client: OneRosterClient, page_size: int, window: int = 1) -> list[str]:
    got: list[str] = []
    async for items in pages(client, "orgs", page_size=page_size, window=window):
        got += [i["sourcedId"] for i in items]
    return got


async def test_a_short_page_ends_the_collection() -> None:
    handler = collection(25)
    client, http = client_for(handler)
    async with http:
        assert await collect(client, 10) == [f"o{i}" for i in range(25)]
    assert handler.seen == [(0, 10), (10, 10), (20, 10)]


async def test_an_empty_page_ends_a_collection_of_full_pages() -> None:
    handler = collection(20)
    client, http = client_for(handler)
    async with http:
        assert len(await collect(client, 10)) == 20
    assert handler.seen == [(0, 10), (10, 10), (20, 10)]


async def test_an_empty_collection_is_one_request() -> None:
    handler = collection(0, total=True)
    client, http = client_for(handler)
    async with http:
        assert await collect(client, 10) == []
    assert handler.seen == [(0, 10)]


async def test_a_total_count_never_ends_the_loop_early() -> None:
    def lying(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        items = [{"sourcedId": f"o{i}"} for i in range(offset, min(30, offset + 10))]
        return httpx.Response(200, json={"orgs": items}, headers={"X-Total-Count": "5"})

    client, http = client_for(lying)
    async with http:
        assert len(await collect(client, 10)) == 30


async def test_a_server_capping_the_page_size_is_followed_by_its_hints() -> None:
    for hints in ({"total": True}, {"link": True}):
        handler = collection(23, cap=5, **hints)
        client, http = client_for(handler)
        async with http:
            assert await collect(client, 100) == [f"o{i}" for i in range(23)]
        assert [o for o, _ in handler.seen] == [0, 5, 10, 15, 20]


async def test_a_capping_server_without_hints_looks_like_one_short_page() -> None:
    handler = collection(23, cap=5)
    client, http = client_for(handler)
    async with http:
        assert len(await collect(client, 100)) == 5  # nothing says there is more


async def test_pages_are_fetched_concurrently_but_yielded_in_order() -> None:
    handler = collection(95, total=True)
    client, http = client_for(handler, concurrency=3)
    async with http:
        assert await collect(client, 10, window=3) == [f"o{i}" for i in range(95)]


async def test_the_filter_is_url_encoded_whole() -> None:
    assert (
        filter_query("dateLastModified>'2024-01-01T00:00:00.000Z'")
        == "dateLastModified%3E%272024-01-01T00%3A00%3A00.000Z%27"
    )
    url = OneRosterClient(SOURCE, httpx.AsyncClient(), NoAuth(), asyncio.Semaphore(1)).url(
        "users", offset=0, limit=100, filter_="role='teacher' AND x>'1'"
    )
    assert url == (
        "https://sis.example/ims/oneroster/v1p1/users?limit=100&offset=0"
        "&filter=role%3D%27teacher%27%20AND%20x%3E%271%27"
    )


def test_api_roots_of_both_versions_and_full_base_paths() -> None:
    assert SOURCE.api_root == "https://sis.example/ims/oneroster/v1p1"
    v12 = SOURCE.model_copy(update={"version": "1.2", "base_url": "https://h/"})
    assert v12.api_root == "https://h/ims/oneroster/rostering/v1p2"
    full = SOURCE.model_copy(update={"base_url": "https://h/campus/api/ims/oneroster/v1p1/"})
    assert full.api_root == "https://h/campus/api/ims/oneroster/v1p1"


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Wed, 01 May 2024 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # spread over the whole range


async def test_429_and_5xx_are_retried_honouring_retry_after() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(503),
        httpx.Response(200, json={"orgs": [{"sourcedId": "a"}]}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    recorder = Recorder()
    client, http = client_for(handler, recorder=recorder)
    async with http:
        page = await client.page("orgs", offset=0, limit=10)
    assert [i["sourcedId"] for i in page.items] == ["a"]
    assert recorder.slept[0] == 3.0  # exactly what Retry-After asked
    assert 0 <= recorder.slept[1] <= 2.0  # then backoff (second attempt: up to base·2)


async def test_timeouts_and_connection_errors_are_retried() -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if calls[0] == 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"orgs": []})

    client, http = client_for(handler)
    async with http:
        assert (await client.page("orgs", offset=0, limit=10)).items == []
    assert calls[0] == 3


async def test_gives_up_after_the_last_attempt() -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        return httpx.Response(500, json={"imsx_description": "boom"})

    recorder = Recorder()
    client, http = client_for(handler, attempts=4, recorder=recorder)
    async with http:
        with pytest.raises(FetchError, match=r"gave up after 4 attempts \(HTTP 500\)"):
            await client.page("orgs", offset=0, limit=10)
    assert calls[0] == 4
    assert len(recorder.slept) == 3  # no wait after the last attempt


async def test_a_client_error_fails_at_once_with_the_servers_words() -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        return httpx.Response(400, json={"imsx_description": "invalid_filter_field"})

    client, http = client_for(handler)
    async with http:
        with pytest.raises(FetchError, match="HTTP 400: invalid_filter_field"):
            await client.page("orgs", offset=0, limit=10)
    assert calls[0] == 1


async def test_an_answer_without_the_collection_fails() -> None:
    client, http = client_for(lambda r: httpx.Response(200, json={"a": 1, "b": 2}))
    async with http:
        with pytest.raises(FetchError, match="no 'orgs' list"):
            await client.page("orgs", offset=0, limit=10)


async def test_the_tenant_semaphore_caps_requests_in_flight() -> None:
    in_flight, peak = [0], [0]

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return httpx.Response(200, json={"orgs": []})

    client, http = client_for(handler, concurrency=2)
    async with http:
        await asyncio.gather(*(client.page("orgs", offset=i, limit=1) for i in range(8)))
    assert peak[0] == 2
