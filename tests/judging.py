"""Running a bundle through the fetcher and the validator in memory, for unit tests.

CsvRun publishes into a recording producer and a ValidatorHandler judges what it sent, as the
services do over Kafka: file facts on every partition (reported from partition 0 only), then the
records. Pure logic: the end-to-end proof is in tests/integration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from uuid import uuid4

from rostersync_fetcher.csv.run import CsvRun
from rostersync_libs.events import EntityType, FileEvent, RecordEvent, decode
from rostersync_libs.findings import Finding
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics
from rostersync_validator.handler import ValidatorHandler
from rostersync_validator.known import Key

from tests.fakes import FakeKnown, Item, RecordingProducer


class Judged:
    """What one bundle gave: the fetched events and every finding, as the report would show."""

    def __init__(
        self,
        events: list[Item],
        records: list[RecordEvent],
        findings: list[Finding],
        rejected: set[str],
    ):
        self.events = events  # as sent (a batch as its records), file facts, markers
        self.records = records  # the batches' records, in order
        self.findings = findings
        self.rejected = rejected  # "file:row" of every rejected record

    def where(self) -> set[tuple[str, str | None, int | None, str | None, str | None]]:
        return {(f.code, f.file, f.row, f.column, f.value) for f in self.findings}

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def record(self, entity: EntityType, sourced_id: str) -> RecordEvent:
        (found,) = (e for e in self.records if e.entity is entity and e.sourced_id == sourced_id)
        return found


async def judge(bundle: Path, *, known: set[Key] | None = None, profile: str = "lenient") -> Judged:
    producer = RecordingProducer()
    tenant = Tenant(
        id="t", name="T", validation=profile, sources=[CsvSource(id="csv", path=bundle)]
    )
    await CsvRun(
        producer=cast(Any, producer),
        topics=Topics(),
        tenant=tenant,
        source=cast(CsvSource, tenant.sources[0]),
        run_id=uuid4(),
    ).run()
    events = producer.events(Topics().fetched)
    handler = ValidatorHandler(FakeKnown(known))
    found: list[Finding] = []
    # File facts go to every partition (3 here); the validator reports them from 0 only.
    for topic, value, partition in producer.sent:
        if topic != Topics().fetched:
            continue
        event = decode(value)
        if isinstance(event, FileEvent):
            assert partition is not None
            found += handler.on_file(event, partition)
    records = producer.records(Topics().fetched)
    rejected: set[str] = set()
    for record, outcome in zip(records, await handler.handle(records), strict=True):
        found += outcome.findings
        if outcome.forward is None:
            assert record.origin is not None
            rejected.add(f"{record.origin.file}:{record.origin.row}")
    return Judged(events, records, found, rejected)
