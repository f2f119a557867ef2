"""Unchanged records: which qualify, how the fetcher lists them, how the writer collapses them."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import msgspec
from aiokafka.partitioner import DefaultPartitioner
from rostersync_fetcher.publisher import RunPublisher
from rostersync_fetcher.unchanged import UnchangedRecords, eligible
from rostersync_libs.events import (
    EntityType,
    Operation,
    RecordEvent,
    RecordFacts,
    UnchangedList,
    flagged_hash,
    record_event,
    unchanged_list,
)
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_writer.batch import EntityBatch

from tests.fakes import RecordingProducer, records_in

RUN = new_run_id()
TENANT = Tenant(id="d1", name="D1", sources=[CsvSource(id="csv", path=".")])


def user(sourced_id: str, name: str = "Ann", **extra: Any) -> RecordEvent:
    return record_event(tenant="d1", source="csv", run_id=RUN, entity=EntityType.USER,
                        sourced_id=sourced_id, payload={"sourcedId": sourced_id, "givenName": name},
                        **extra)  # fmt: skip


class StoredHashes(UnchangedRecords):
    """The writer's tables, as a dict of (entity, sourcedId) → stored hash."""

    def __init__(self, stored: dict[str, str], usable: bool = True) -> None:
        self._stored = stored
        self._usable = usable
        self.lookups: list[int] = []

    async def usable(self, tenant: str, run_id: UUID) -> bool:
        return self._usable

    async def matching(
        self, tenant: str, source: str, entity: EntityType, events: list[RecordEvent]
    ) -> set[str]:
        self.lookups.append(len(events))
        return {
            e.sourced_id
            for e in events
            if eligible(e) and e.sourced_id and self._stored.get(e.sourced_id) == e.content_hash
        }


def test_only_clean_upserts_qualify_and_findings_change_the_hash() -> None:
    ann = user("u1")
    assert eligible(ann)
    assert not eligible(msgspec.structs.replace(ann, operation=Operation.DELETE))
    assert not eligible(msgspec.structs.replace(ann, facts=RecordFacts(duplicate_of_row=3)))
    assert ann.content_hash is not None
    flagged = flagged_hash(ann.content_hash, ["b", "a"])
    assert flagged != ann.content_hash
    assert flagged == flagged_hash(ann.content_hash, ["a", "b"])  # stable across runs
    assert flagged != flagged_hash(ann.content_hash, ["a"])


async def test_publisher_lists_unchanged_records_on_their_own_partition() -> None:
    producer = RecordingProducer(partitions=3)
    records = [user(f"u{n}") for n in range(40)]
    stored = {e.sourced_id or "": e.content_hash or "" for e in records[:30]}
    stored["u5"] = "an older hash"  # changed since: travels whole
    lookup = StoredHashes(stored)
    out = RunPublisher(producer=cast(Any, producer), topics=ServiceSettings().topics,
                       tenant=TENANT, source_id="csv", run_id=RUN, send_batch=16,
                       unchanged=lookup)  # fmt: skip
    for event in records:
        await out.send(event)
    await out.flush()

    placed = producer.placed(ServiceSettings().topics.fetched)
    whole = [e.sourced_id for e, _ in placed if isinstance(e, RecordEvent)]
    assert sorted(whole) == sorted(["u5", *[f"u{n}" for n in range(30, 40)]])
    assert whole[0] == "u5"  # the first batch's changed record goes before the later ones
    partitioner = DefaultPartitioner()
    listed: dict[str, int] = {}
    for item, partition in placed:
        if isinstance(item, RecordEvent):  # a changed record: on its own key's partition too
            key = f"d1:users:{item.sourced_id}".encode()
            assert partition == partitioner(key, [0, 1, 2], [0, 1, 2])
        if isinstance(item, UnchangedList):
            assert item.entity is EntityType.USER
            for sourced_id, hash_ in item.listed.items():
                assert hash_ == stored[sourced_id]
                listed[sourced_id] = cast(int, partition)
    assert set(listed) == {f"u{n}" for n in range(30)} - {"u5"}
    for sourced_id, partition in listed.items():
        key = f"d1:users:{sourced_id}".encode()
        assert partition == partitioner(key, [0, 1, 2], [0, 1, 2])
    assert out.unchanged_counts == {"users": 29}
    assert lookup.lookups == [16, 16, 8]  # looked up per batch, never the whole file at once


async def test_without_a_settled_previous_run_everything_travels_whole() -> None:
    producer = RecordingProducer(partitions=3)
    records = [user(f"u{n}") for n in range(5)]
    lookup = StoredHashes({e.sourced_id or "": e.content_hash or "" for e in records}, usable=False)
    out = RunPublisher(producer=cast(Any, producer), topics=ServiceSettings().topics,
                       tenant=TENANT, source_id="csv", run_id=RUN, unchanged=lookup)  # fmt: skip
    for event in records:
        await out.send(event)
    await out.flush()
    sent = producer.events(ServiceSettings().topics.fetched)
    assert len(records_in(sent)) == len(sent) == 5
    assert lookup.lookups == []


def test_a_later_upsert_in_the_same_batch_supersedes_a_list() -> None:
    later = new_run_id()
    batch = EntityBatch()
    batch.add(unchanged_list(tenant="d1", source="csv", run_id=RUN, entity=EntityType.USER,
                             listed={"u1": "h1", "u2": "h2"}))  # fmt: skip
    batch.add(msgspec.structs.replace(user("u1", "Anna"), run_id=later))
    assert set(batch.unchanged) == {("d1", "u2")}
    assert batch.upserts[("d1", "u1")][1] == RUN  # first seen by the listing run
    # A list after an upsert of the same batch is checked against the row that upsert leaves.
    batch.add(unchanged_list(tenant="d1", source="csv", run_id=later, entity=EntityType.USER,
                             listed={"u1": "h1b"}))  # fmt: skip
    assert batch.unchanged[("d1", "u1")] == ("h1b", later)


async def test_a_failing_lookup_sends_everything_whole_for_the_rest_of_the_run() -> None:
    import asyncpg

    class Broken(StoredHashes):
        async def matching(
            self, tenant: str, source: str, entity: EntityType, events: list[RecordEvent]
        ) -> set[str]:
            self.lookups.append(len(events))
            raise asyncpg.PostgresConnectionError("the database went away")

    producer = RecordingProducer(partitions=3)
    records = [user(f"u{n}") for n in range(20)]
    lookup = Broken({e.sourced_id or "": e.content_hash or "" for e in records})
    out = RunPublisher(producer=cast(Any, producer), topics=ServiceSettings().topics,
                       tenant=TENANT, source_id="csv", run_id=RUN, send_batch=8,
                       unchanged=lookup)  # fmt: skip
    for event in records:
        await out.send(event)
    await out.flush()
    sent = records_in(producer.events(ServiceSettings().topics.fetched))
    assert sorted(e.sourced_id for e in sent) == sorted(f"u{n}" for n in range(20))
    assert lookup.lookups == [8]  # tried once, then not again in this run
