"""``rostersync lag``: messages each service has not done yet, per topic and partition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rostersync_libs.events import EntityType, record_event
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings

from tests.cli_process import cli
from tests.e2e import sealing_producer
from tests.wire import send_records

pytestmark = pytest.mark.integration


async def test_lag_counts_what_a_stopped_service_has_not_read(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    run_id = new_run_id()
    async with sealing_producer(settings, "test-lag") as producer:
        for n in range(7):
            event = record_event(tenant="d1", source="csv", run_id=run_id, entity=EntityType.USER,
                                 sourced_id=f"u{n}", payload={"sourcedId": f"u{n}"})  # fmt: skip
            # One batch message per record here: lag counts messages (batches), not records.
            await send_records(producer, settings.topics.fetched, [event])
    answer = await cli(settings, tmp_path / "none.toml", "lag", "--json")
    assert answer.code == 0, answer
    services = json.loads(answer.out)["services"]
    assert {name: s["lag"] for name, s in services.items()} == {
        "fetcher": 0,
        "validator": 7,
        "mapper": 0,
        "writer": 0,
    }
    partitions = services["validator"]["partitions"]
    assert {p["topic"] for p in partitions} == {settings.topics.fetched}
    assert sum(p["lag"] for p in partitions) == 7
    shown = await cli(settings, tmp_path / "none.toml", "lag")
    assert "validator" in shown.out
    assert "7" in shown.out
