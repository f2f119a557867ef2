"""The districts page's "next scheduled" column: the fetcher's own schedule rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rostersync_api.console.pages_districts import next_scheduled
from rostersync_libs.tenants import Tenant


def tenant(schedule: dict[str, Any] | None) -> Tenant:
    source: dict[str, Any] = {
        "id": "api", "kind": "oneroster-api", "base_url": "https://sis.example",
        "auth": {"kind": "oauth1", "key": "k", "secret_env": "S"},
    }  # fmt: skip
    if schedule is not None:
        source["schedule"] = schedule
    return Tenant.model_validate({"id": "d1", "name": "D1", "sources": [source]})


def test_next_scheduled_follows_the_source_s_schedule_and_its_last_run() -> None:
    started = datetime.now(UTC) - timedelta(seconds=100)
    runs = [{"source": "api", "started_at": started}]
    due = next_scheduled(tenant({"every_seconds": 3600}), runs, paused=False)
    assert due == started + timedelta(seconds=3600)
    assert next_scheduled(tenant({"every_seconds": 3600}), runs, paused=True) is None
    assert next_scheduled(tenant(None), runs, paused=False) is None  # only on request
    never = next_scheduled(tenant({"every_seconds": 3600}), [], paused=False)
    assert never is not None
    assert never <= datetime.now(UTC)  # never synced: due now
