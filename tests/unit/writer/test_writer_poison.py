"""The writer's reading of the mapped topic never stops on a message or a record (pure logic):
what cannot be written is rejected alone, at its index in its batch, and the rest applies (the
real-stack tests are in tests/integration/test_poison.py)."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
import msgspec
import orjson
from aiokafka import TopicPartition
from rostersync_libs import events
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.events import (
    EntityType,
    Operation,
    RecordEvent,
    RunMarker,
    batches_of,
    record_event,
)
from rostersync_libs.findings import Finding
from rostersync_libs.topics import Topics
from rostersync_writer.app import Inbox
from rostersync_writer.collector import collector_paused
from rostersync_writer.poison import (
    Unit,
    halves,
    held_by,
    isolate,
    read_mapped,
    seen_version,
    units_of,
)
from rostersync_writer.rejections import event_json, own_row, rejection_row

TOPICS = Topics()
RUN = UUID("01900000-0000-7000-8000-000000000001")


def _record(sourced_id: str, **changes: Any) -> RecordEvent:
    event = record_event(
        tenant="d1", source="csv", run_id=RUN, entity=EntityType.USER, sourced_id=sourced_id,
        payload={"sourcedId": sourced_id},
    )  # fmt: skip
    return msgspec.structs.replace(event, internal_id=uuid4(), **changes)


def _batch(records: list[RecordEvent]) -> bytes:
    (batch,) = batches_of(records)
    return events.encode(batch)


def _mapped(
    value: bytes | None, offset: int = 0, partition: int = 0, topic: str = "", tenant: str = "d1"
) -> Any:
    return SimpleNamespace(
        topic=topic or TOPICS.mapped, partition=partition, offset=offset,
        key=f"{tenant}:run:x:records:0".encode(), value=value, headers=[],
    )  # fmt: skip


def test_a_batch_with_one_unwritable_record_rejects_exactly_that_record() -> None:
    records = [_record(f"u{n}") for n in range(5)]
    records[3] = msgspec.structs.replace(records[3], content_hash=None)
    message = _mapped(_batch(records), offset=7)
    judged = read_mapped(message)
    assert judged.problem is None
    assert list(judged.problems) == [3]
    assert judged.problems[3].code == "writer_apply_failed"
    assert "content_hash" in judged.problems[3].message

    tp = TopicPartition(TOPICS.mapped, 0)
    inbox = Inbox.sort(TOPICS, {tp: [message]})
    ((rejected, index, record, found),) = inbox.poison
    assert (rejected.offset, index) == (7, 3)
    assert isinstance(record, RecordEvent)
    assert record.sourced_id == "u3"
    assert [f.code for f in found] == ["writer_apply_failed"]
    # The rest applies, in order; the rejected record counts as seen in its run, in its place.
    assert [(r.sourced_id, r.operation) for r in inbox.records if isinstance(r, RecordEvent)] == [
        ("u0", Operation.UPSERT), ("u1", Operation.UPSERT), ("u2", Operation.UPSERT),
        ("u3", Operation.SEEN), ("u4", Operation.UPSERT),
    ]  # fmt: skip
    assert inbox.runs_seen == {("d1", RUN, "csv")}
    assert inbox.received == {"d1": 5}
    # Its rejection row is found at the message's position and the record's index.
    row = own_row(rejected, index, record, found)
    assert row[9:] == (TOPICS.mapped, 0, 7, 3)
    assert row[4] == "u3"


def test_the_writer_sets_aside_what_it_cannot_write_before_its_transaction() -> None:
    good = _record("u1")
    judged = read_mapped(_mapped(_batch([good])))
    assert (judged.problem, judged.problems, judged.records) == (None, {}, [good])
    cases = {
        None: "empty_message",
        b"[]": "envelope_undecodable",
        b"\xff{": "envelope_undecodable",
    }
    for value, code in cases.items():
        whole = read_mapped(_mapped(value))
        assert (whole.event, whole.problem.code if whole.problem else None) == (None, code), value
    # Sealed with one tenant's key, claiming another tenant: rejected whole, as the stages do.
    other = read_mapped(_mapped(_batch([good]), tenant="other"))
    assert (other.event, other.problem.code if other.problem else None) == (
        None, "envelope_tenant_mismatch",
    )  # fmt: skip
    per_record = {
        "content_hash": msgspec.structs.replace(good, content_hash=None),
        "internal_id": msgspec.structs.replace(good, internal_id=None),
        "sourced_id": msgspec.structs.replace(good, sourced_id="u\x001"),
        "tenant": msgspec.structs.replace(good, tenant="d\x001"),
    }
    for name, record in per_record.items():
        found = read_mapped(_mapped(_batch([record]), tenant=record.tenant)).problems
        assert [f.code for f in found.values()] == ["writer_apply_failed"], name
        assert name in found[0].message
    # A delete and a seen record need neither a hash nor content.
    delete = msgspec.structs.replace(good, operation=Operation.DELETE, content_hash=None)
    assert read_mapped(_mapped(_batch([delete, good.seen(["x"])]))).problems == {}


def test_an_undecodable_message_says_which_field_is_missing_and_where() -> None:
    batch = orjson.loads(_batch([_record(f"u{n}") for n in range(5)]))
    del batch["records"][3]["sourced_id"]
    judged = read_mapped(_mapped(orjson.dumps(batch)))
    assert judged.problem is not None
    assert judged.problem.code == "envelope_incomplete"  # as the stages judge it
    assert "`sourced_id`" in judged.problem.message
    assert "$.records[3]" in judged.problem.message
    inbox = Inbox.sort(TOPICS, {TopicPartition(TOPICS.mapped, 0): [_mapped(orjson.dumps(batch))]})
    assert [(index, record) for _, index, record, _ in inbox.poison] == [(0, None)]
    assert inbox.records == []


def test_markers_and_lists_are_sorted_by_type() -> None:
    marker = events.RunEnd(
        tenant="d1", source="csv", run_id=RUN,
        marker=RunMarker(origin_partition=0, origin_count=1, fanout=1),
    )  # fmt: skip
    listed = events.unchanged_list(
        tenant="d1", source="csv", run_id=RUN, entity=EntityType.USER, listed={"u9": "h"}
    )
    messages = [_mapped(events.encode(listed), 0, 2), _mapped(events.encode(marker), 1, 2)]
    inbox = Inbox.sort(TOPICS, {TopicPartition(TOPICS.mapped, 2): messages})
    assert inbox.records == [listed]
    assert inbox.markers == [(2, marker)]
    assert inbox.received == {}  # lists are not records received


def test_a_rejected_record_with_a_key_counts_as_seen() -> None:
    event = _record("u1", content_hash=None)
    seen = seen_version(event, ["writer_apply_failed"])
    assert seen is not None
    assert (seen.operation, seen.payload, seen.rejected_codes, seen.internal_id) == (
        Operation.SEEN, {}, ["writer_apply_failed"], event.internal_id,
    )  # fmt: skip
    assert seen_version(None, ["x"]) is None
    assert seen_version(msgspec.structs.replace(event, sourced_id="x" * 5000), ["x"]) is None


def test_a_rejection_row_holds_nothing_postgres_refuses() -> None:
    event = _record("s\x00" + "x" * 5000, payload={"name": "a\x00b"}, tenant="t\x00" * 1000)
    found = [Finding(code="c", severity="error", message="m")]
    row = own_row(_mapped(event.to_bytes(), tenant=event.tenant), 0, event, found)
    tenant, _, stage, _, sourced_id, *_ = row
    assert "\x00" not in tenant
    assert len(tenant) <= 200
    assert "\x00" not in sourced_id
    assert len(sourced_id) <= 400
    assert stage == "writer"
    assert "\\u0000" not in event_json(event)
    assert orjson.loads(event_json(event))["payload"] == {"name": "ab"}


def test_a_dead_letter_row_carries_its_index_in_the_batch() -> None:
    record = _record("u2")
    found = [Finding(code="invalid_enumeration", severity="error", message="m")]
    letter = DeadLetter(
        stage="validator", topic=TOPICS.fetched, partition=1, offset=40, findings=found, index=6
    )
    row = rejection_row(_mapped(record.to_bytes(), topic=TOPICS.validator_dlq), letter, record)
    assert row[:5] == ("d1", RUN, "validator", "users", "u2")
    assert row[9:] == (TOPICS.fetched, 1, 40, 6)


def test_units_are_records_of_batch_messages_in_order() -> None:
    tp, side = TopicPartition(TOPICS.mapped, 0), TopicPartition(TOPICS.findings, 0)
    first = _mapped(_batch([_record(f"a{n}") for n in range(3)]), 0)
    second = _mapped(_batch([_record(f"b{n}") for n in range(2)]), 1)
    parts = units_of(TOPICS.mapped, {tp: [first, second, _mapped(None, 2)], side: [first]})
    assert [(u.message.offset, u.index) for u in parts[tp]] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0),
    ]  # fmt: skip
    assert [u.judged for u in parts[side]] == [None]
    held = held_by(parts[tp][4])
    assert isinstance(held, RecordEvent)
    assert held.sourced_id == "b1"
    # A part of a batch message is applied as that many records, nothing else of the message.
    inbox = Inbox.of_units(TOPICS, {tp: parts[tp][1:4]})
    assert [r.sourced_id for r in inbox.records if isinstance(r, RecordEvent)] == ["a1", "a2", "b0"]


def test_halves_keep_each_partitions_order() -> None:
    tp0, tp1 = TopicPartition(TOPICS.mapped, 0), TopicPartition(TOPICS.mapped, 1)
    parts = {tp0: list(range(5)), tp1: [9]}
    first, second = halves(parts)
    assert (first[tp0], second[tp0]) == ([0, 1], [2, 3, 4])
    assert tp1 not in first
    assert second[tp1] == [9]
    first, second = halves({tp0: [0], tp1: [9]})
    assert len(first) == len(second) == 1


class FakeConnection:
    """Savepoints that roll back what failed; rejections written, as asyncpg would take them."""

    def __init__(self) -> None:
        self.rejections: list[tuple[Any, ...]] = []

    @asynccontextmanager
    async def _savepoint(self) -> Any:
        kept = list(self.rejections)
        try:
            yield
        except BaseException:
            self.rejections = kept
            raise

    def transaction(self) -> Any:
        return self._savepoint()

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if "rejected_records" in sql:
            self.rejections.extend(rows)


async def test_isolation_sets_aside_the_one_record_the_database_refuses() -> None:
    tp0, tp1 = TopicPartition(TOPICS.mapped, 0), TopicPartition(TOPICS.mapped, 1)
    batch = [_record(f"u{n}") for n in range(9)]
    parts = units_of(
        TOPICS.mapped,
        {tp0: [_mapped(_batch(batch[:6]), 0), _mapped(_batch(batch[6:]), 1)],
         tp1: [_mapped(_batch([_record("v0")]), 5, 1)]},
    )  # fmt: skip
    applied: list[list[str]] = []
    seen: list[RecordEvent] = []

    async def apply(part: dict[TopicPartition, list[Unit]]) -> int:
        inbox = Inbox.of_units(TOPICS, part)
        ids = [r.sourced_id for r in inbox.records if isinstance(r, RecordEvent)]
        if "u4" in ids:  # say, an internal id already another record's
            raise asyncpg.UniqueViolationError("duplicate key value")
        applied.append(ids)
        return len(ids)

    async def apply_seen(record: RecordEvent) -> None:
        seen.append(record)

    conn = FakeConnection()
    done, aside = await isolate(cast(asyncpg.Connection, conn), parts, apply, apply_seen)
    assert [(u.message.offset, u.index) for u in aside] == [(0, 4)]
    assert sum(done) == 9  # everything else landed
    landed = [sid for ids in applied for sid in ids]
    assert sorted(landed) == [*sorted(f"u{n}" for n in range(9) if n != 4), "v0"]
    assert [sid for sid in landed if sid.startswith("u")] == [
        f"u{n}" for n in range(9) if n != 4
    ]  # in the partition's order
    (row,) = conn.rejections
    assert (row[4], row[9:], orjson.loads(row[7])[0]["code"]) == (
        "u4", (TOPICS.mapped, 0, 0, 4), "writer_apply_failed",
    )  # fmt: skip
    assert [(s.sourced_id, s.operation, s.rejected_codes) for s in seen] == [
        ("u4", Operation.SEEN, ["writer_apply_failed"])
    ]


def test_a_dead_letter_is_one_unit_holding_its_record() -> None:
    record = _record("u1")
    dlq = TopicPartition(TOPICS.validator_dlq, 0)
    parts = units_of(TOPICS.mapped, {dlq: [_mapped(record.to_bytes(), topic=dlq.topic)]})
    (only,) = parts[dlq]
    assert (only.index, only.judged) == (0, None)
    assert held_by(only) == record  # a dead letter's value is one record with its context
    undecodable = Unit(_mapped(b"\xff{", topic=dlq.topic), 0, None)
    assert held_by(undecodable) is None  # the original bytes of a message that was no event


def test_the_collector_is_paused_only_while_a_batch_is_decoded() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_a_batch_whose_every_record_is_rejected_notes_no_run() -> None:
    """A NUL in the batch's tenant is in every record's key: nothing of it can be noted."""
    records = [_record(f"u{n}", tenant="d\x001") for n in range(3)]
    message = _mapped(_batch(records), tenant="d\x001")
    inbox = Inbox.sort(TOPICS, {TopicPartition(TOPICS.mapped, 0): [message]})
    assert [index for _, index, _, _ in inbox.poison] == [0, 1, 2]
    assert (inbox.records, inbox.runs_seen, inbox.received) == ([], set(), {})
