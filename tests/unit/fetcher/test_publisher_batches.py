"""The publisher's record batches: per-partition order, bounds, keys, and a record too large."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import msgspec
import pytest
from rostersync_fetcher.csv.run import CsvRun
from rostersync_fetcher.publisher import RecordTooLarge, RunPublisher
from rostersync_libs import events
from rostersync_libs.events import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    EntityType,
    FileEvent,
    FileFacts,
    Origin,
    RecordBatch,
    RecordEvent,
    RunEnd,
    record_event,
)
from rostersync_libs.ids import new_run_id
from rostersync_libs.partitioning import key_partition
from rostersync_libs.runs import RunPhase
from rostersync_libs.stage import MAX_MESSAGE_BYTES
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics

from tests.fakes import Item, RecordingProducer, flat, records_in, run_ends

TOPICS = Topics()
RUN = new_run_id()
TENANT = Tenant(id="d1", name="D1", sources=[CsvSource(id="csv", path=".")])
PARTITIONS = [0, 1, 2]


def user(n: int, *, filler: int = 0) -> RecordEvent:
    sourced_id = f"u{n}"
    payload = {
        "sourcedId": sourced_id,
        "givenName": "Ann",
        **({"note": "x" * filler} if filler else {}),
    }
    return record_event(tenant="d1", source="csv", run_id=RUN, entity=EntityType.USER,
                        sourced_id=sourced_id, payload=payload,
                        origin=Origin(file="users.csv", row=n + 2))  # fmt: skip


def facts(name: str) -> FileFacts:
    return FileFacts(file=name, entity=EntityType.USER, mode="bulk")


def publisher(producer: RecordingProducer, send_batch: int) -> RunPublisher:
    return RunPublisher(producer=cast(Any, producer), topics=TOPICS, tenant=TENANT,
                        source_id="csv", run_id=RUN, send_batch=send_batch)  # fmt: skip


def label(item: Item) -> str:
    if isinstance(item, RecordEvent):
        return item.sourced_id
    if isinstance(item, FileEvent):
        return f"file:{item.facts.file}"
    if isinstance(item, RunEnd):
        return "end"
    raise AssertionError(item)


def on_partition(producer: RecordingProducer, partition: int) -> list[str]:
    return [label(i) for i, p in producer.placed(TOPICS.fetched) if p == partition]


async def test_each_partition_gets_its_records_in_order_and_broadcasts_after_what_came_before() -> (
    None
):
    producer = RecordingProducer(partitions=3)
    out = publisher(producer, send_batch=300)
    published: list[tuple[str, int | None]] = []  # (label, partition; None: every partition)
    n = 0
    for file_name, count in (("a.csv", 250), ("b.csv", 700), ("c.csv", 5)):
        await out.file_facts(facts(file_name))
        published.append((f"file:{file_name}", None))
        for _ in range(count):
            record = user(n)
            await out.send(record)
            published.append(
                (record.sourced_id, key_partition(record.key(), PARTITIONS, PARTITIONS))
            )
            n += 1
    await out.end([EntityType.USER])
    published.append(("end", None))

    for partition in PARTITIONS:
        expected = [name for name, p in published if p in (None, partition)]
        assert on_partition(producer, partition) == expected
    fetched = [m for m in producer.messages if m.topic == TOPICS.fetched]
    decoded = [(events.decode(m.value), m.partition) for m in fetched]
    batches = [(b, p) for b, p in decoded if isinstance(b, RecordBatch)]
    # Batched: far fewer messages than records, each for the partition it was sent to.
    assert len(batches) < 20
    for batch, sent_to in batches:
        for record in events.records_of(batch):
            assert key_partition(record.key(), PARTITIONS, PARTITIONS) == sent_to


async def test_records_wait_for_the_send_batch_and_a_flush_sends_the_rest() -> None:
    producer = RecordingProducer(partitions=3)
    out = publisher(producer, send_batch=100)
    for n in range(99):
        await out.send(user(n))
    assert producer.messages == []  # buffered, not sent one by one
    await out.send(user(99))
    assert len(records_in(producer.events(TOPICS.fetched))) == 100
    await out.send(user(100))
    await out.flush()
    assert len(records_in(producer.events(TOPICS.fetched))) == 101


async def test_a_batch_never_passes_the_record_or_byte_bounds() -> None:
    producer = RecordingProducer(partitions=1)
    out = publisher(producer, send_batch=5000)
    many = [user(n) for n in range(2500)]  # small records: bounded by count
    large = [user(n, filler=20_000) for n in range(2500, 2600)]  # 100 of 20 kB: by size
    for record in [*many, *large]:
        await out.send(record)
    await out.flush()
    sent = [m for m in producer.messages if m.topic == TOPICS.fetched]
    sizes = []
    for m in sent:
        batch = events.decode(m.value)
        assert isinstance(batch, RecordBatch)
        assert len(batch.records) <= MAX_BATCH_RECORDS
        assert len(m.value) <= MAX_BATCH_BYTES
        sizes.append(len(batch.records))
    assert sizes[:2] == [1000, 1000]  # by count
    assert sum(sizes) == 2600
    assert len(sizes) > 4  # the last 600 (2 MB with the large ones) are split by size
    got = [e.sourced_id for e in records_in(producer.events(TOPICS.fetched))]
    assert got == [r.sourced_id for r in [*many, *large]]


async def test_no_record_topic_key_carries_a_sourced_id() -> None:
    producer = RecordingProducer(partitions=3)
    out = publisher(producer, send_batch=7)
    await out.file_facts(facts("users.csv"))
    ids = [f"secret-{n}" for n in range(20)]
    for n, sourced_id in enumerate(ids):
        await out.send(msgspec.structs.replace(user(n), sourced_id=sourced_id))
    await out.end([])
    keys = [m.key for m in producer.messages if m.topic == TOPICS.fetched]
    assert len(keys) > 3
    for key in keys:
        assert key is not None
        assert key.startswith(b"d1:")  # the sealing layer needs the tenant first
        assert not any(sourced_id.encode() in key for sourced_id in ids)
    assert sorted(e.sourced_id for e in records_in(producer.events(TOPICS.fetched))) == sorted(ids)


async def test_a_record_over_the_batch_limit_goes_alone_when_a_message_can_hold_it() -> None:
    producer = RecordingProducer(partitions=1)
    out = publisher(producer, send_batch=10)
    big = user(1, filler=MAX_BATCH_BYTES + 10_000)
    for record in (user(0), big, user(2)):
        await out.send(record)
    await out.flush()
    sent = [flat(m.value) for m in producer.messages if m.topic == TOPICS.fetched]
    assert [[label(i) for i in items] for items in sent] == [["u0"], ["u1"], ["u2"]]
    alone = next(m for m in producer.messages if len(m.value) > MAX_BATCH_BYTES)
    assert len(alone.value) + len(alone.key or b"") <= MAX_MESSAGE_BYTES


async def test_a_record_no_message_can_hold_is_never_dropped_silently() -> None:
    producer = RecordingProducer(partitions=1)
    out = publisher(producer, send_batch=10)
    await out.send(user(0, filler=MAX_MESSAGE_BYTES))
    with pytest.raises(RecordTooLarge, match=r"users.csv row 2: a users record of [\d,]+ bytes"):
        await out.flush()


async def test_a_bundle_with_a_record_too_large_for_any_message_fails_its_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "manifest.csv").write_text(
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\n"
    )
    header = (
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
        "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
        "password\n"
    )
    row = "{sid},,,true,o1,student,{sid},,{given},Smith,,,,,,,,\n"
    users = header + row.format(sid="u1", given="Sam") + row.format(sid="u2", given="x" * 1_100_000)
    (tmp_path / "users.csv").write_text(users)
    source = CsvSource(id="csv", path=tmp_path)
    producer = RecordingProducer(partitions=3)
    outcome = await CsvRun(
        producer=cast(Any, producer),
        topics=TOPICS,
        tenant=Tenant(id="t", name="T", sources=[source]),
        source=source,
        run_id=uuid4(),
    ).run()
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("users.csv row 3: a users record of ")
    assert "it cannot be sent, so the run cannot complete" in outcome.reason
    ends = run_ends(producer.events(TOPICS.fetched))
    assert len(ends) == 3
    assert all(e.marker.aborted for e in ends)  # every stage releases the run; nothing is swept


class SlowAcks(RecordingProducer):
    """Acknowledges only when the test says so."""

    def __init__(self) -> None:
        super().__init__(partitions=1)
        self.acks: list[asyncio.Future[None]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   partition: int | None = None, **_: Any) -> asyncio.Future[None]:  # fmt: skip
        await super().send(topic, value, key, partition)
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


async def test_a_rounds_acknowledgements_are_awaited_after_the_next_round_is_sent() -> None:
    producer = SlowAcks()
    out = publisher(cast(RecordingProducer, producer), send_batch=10)
    for n in range(10):
        await out.send(user(n))  # round 1 sent; nothing before it to wait for
    assert len(producer.acks) == 1
    round_two = asyncio.create_task(_send_all(out, range(10, 20)))
    await asyncio.sleep(0.01)
    assert len(producer.acks) == 2  # round 2 sent…
    assert not round_two.done()  # …and waiting for round 1's acknowledgement
    producer.acks[0].set_result(None)
    await asyncio.wait_for(round_two, 1)
    producer.acks[1].set_exception(OSError("broker away"))
    with pytest.raises(OSError, match="broker away"):
        await out.flush()  # a flush waits for everything sent


async def _send_all(out: RunPublisher, numbers: range) -> None:
    for n in numbers:
        await out.send(user(n))


async def test_a_run_failing_with_a_record_too_large_still_buffered_sends_its_aborted_markers() -> (
    None
):
    producer = RecordingProducer(partitions=3)
    out = publisher(producer, send_batch=10)
    await out.send(user(0, filler=MAX_MESSAGE_BYTES))
    event = await out.fail("the bundle broke")
    assert event.phase is RunPhase.FAILED
    ends = run_ends(producer.events(TOPICS.fetched))
    assert len(ends) == 3
    assert all(e.marker.aborted for e in ends)
