"""What the fetcher's REST client and the writer count (metrics.py's series), without servers."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter

import httpx
import pytest
from prometheus_client import REGISTRY
from rostersync_fetcher.rest.client import OneRosterClient, RetryPolicy
from rostersync_fetcher.rest.errors import FetchError
from rostersync_libs.ids import new_run_id
from rostersync_writer.run_metrics import count_batch, requested_at

from tests.unit.fetcher.test_rest_client import SOURCE, NoAuth, Recorder


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rest_requests_are_counted_by_status_and_retries_once_each() -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    answers = iter([503, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), json={"orgs": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = OneRosterClient(
            SOURCE, http, NoAuth(), asyncio.Semaphore(1), tenant=tenant,
            policy=RetryPolicy(max_attempts=4), sleep=Recorder().sleep, rng=random.Random(1),
        )  # fmt: skip
        await client.get(f"{SOURCE.api_root}/orgs?limit=1&offset=0")
    counted = {s: sample("rostersync_rest_requests_total", tenant=tenant, source="api", status=s)
               for s in ("200", "429", "503", "error")}  # fmt: skip
    assert counted == {"200": 1.0, "429": 1.0, "503": 1.0, "error": 0.0}
    assert sample("rostersync_rest_retries_total", tenant=tenant, source="api") == 2.0


async def test_a_request_without_an_answer_counts_as_error() -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = OneRosterClient(
            SOURCE, http, NoAuth(), asyncio.Semaphore(1), tenant=tenant,
            policy=RetryPolicy(max_attempts=2), sleep=Recorder().sleep, rng=random.Random(1),
        )  # fmt: skip
        with pytest.raises(FetchError):
            await client.get(f"{SOURCE.api_root}/orgs?limit=1&offset=0")
    assert (
        sample("rostersync_rest_requests_total", tenant=tenant, source="api", status="error") == 2
    )
    assert sample("rostersync_rest_retries_total", tenant=tenant, source="api") == 1


def test_a_committed_batch_counts_records_rows_and_run_outcomes() -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    run_id = new_run_id()
    assert abs(requested_at(run_id) - time.time()) < 1.0  # a UUIDv7's own milliseconds
    before = sample("rostersync_writer_rows_changed_total", table="user_orgs_test")
    count_batch(
        Counter({tenant: 7}),
        Counter({"user_orgs_test": 5}),
        [(tenant, run_id, "sis", "applied"), (tenant, new_run_id(), "sis", "held"),
         (tenant, new_run_id(), "csv", "aborted")],
    )  # fmt: skip
    assert sample("rostersync_records_in_total", stage="writer", tenant=tenant) == 7
    assert sample("rostersync_writer_rows_changed_total", table="user_orgs_test") == before + 5
    ended = {o: sample("rostersync_runs_ended_total", tenant=tenant, source=s, outcome=o)
             for s, o in (("sis", "completed"), ("sis", "held"), ("csv", "failed"))}  # fmt: skip
    assert ended == {"completed": 1.0, "held": 1.0, "failed": 1.0}
    assert sample("rostersync_run_duration_seconds_count", tenant=tenant) == 3
    assert (
        sample("rostersync_last_successful_sync_timestamp_seconds", tenant=tenant, source="sis") > 0
    )
    assert (
        sample("rostersync_last_successful_sync_timestamp_seconds", tenant=tenant, source="csv")
        == 0
    )
