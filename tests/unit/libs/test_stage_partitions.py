"""Where a middle stage sends records: as record batches on the partition they came from when
the topics match, else on the partition each record's key chooses, every key in its order;
unchanged lists go where their records go, and a run's markers after everything before them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast
from uuid import uuid4

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.partitioner import DefaultPartitioner
from rostersync_libs import events
from rostersync_libs.events import EntityType, RecordEvent, RunEnd, UnchangedList
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.markers import run_end_event
from rostersync_libs.stage import Outcome, PerRecord
from rostersync_libs.stage_progress import StageProgress

from tests.unit.libs.stage_fakes import (
    TOPICS,
    FakeConsumer,
    FakeProducer,
    batch_message,
    make_stage,
    message,
    process,
    record,
)


def _judge(event: RecordEvent) -> Outcome:
    if event.sourced_id == "bad":
        return Outcome(None, [Finding(code="x", severity=Severity.ERROR, message="m")])
    return Outcome(event)


def _chosen(key: bytes, partitions: int) -> int:
    every = list(range(partitions))
    return cast(int, DefaultPartitioner()(key, every, every))


async def test_records_keep_their_partition_when_the_topics_partitions_match() -> None:
    run_id = uuid4()
    consumer = FakeConsumer()
    batch = [record("good", run_id=run_id), record("bad", run_id=run_id)]
    producer = await process(make_stage(PerRecord(_judge)), [batch_message(0, batch, 2)], consumer)
    assert consumer.committed == {TopicPartition(TOPICS.fetched, 2): 1}
    # One batch: the good record and the rejected one's seen, on the partition they came from,
    # under the batch's key (tenant, run, partition: no sourcedId).
    ((partition, sent),) = producer.batches()
    assert partition == 2
    assert [(r.sourced_id, r.operation) for r in events.records_of(sent)] == [
        ("good", events.Operation.UPSERT), ("bad", events.Operation.SEEN),
    ]  # fmt: skip
    (out,) = producer.on(TOPICS.validated)
    assert out.key == f"d1:run:{run_id}:records:2".encode()
    # Dead letters and findings keep the key partitioner.
    others = [s.partition for s in producer.sent if s.topic != TOPICS.validated]
    assert others
    assert set(others) == {None}


async def test_records_are_partitioned_by_key_when_the_topics_differ() -> None:
    run_id = uuid4()
    batch = [record(f"u{n}", run_id=run_id) for n in range(40)]
    stage = make_stage(PerRecord(_judge), out_partitions=4)
    producer = await process(stage, [batch_message(0, batch, 1)])
    placed = {
        r.sourced_id: partition
        for partition, sent in producer.batches()
        for r in events.records_of(sent)
    }
    assert placed == {r.sourced_id: _chosen(r.key(), 4) for r in batch}
    assert len(set(placed.values())) > 1
    for s in producer.on(TOPICS.validated):  # one key per batch, naming its own partition
        assert s.key == f"d1:run:{run_id}:records:{s.partition}".encode()


async def test_every_key_keeps_its_order_across_batches_and_partitions() -> None:
    """Versions of each record in several batches of two input partitions (a key is always on
    one of them, as upstream partitions by key), with a rejection among them, out to a topic of
    another partition count: each key's versions come out in order, on its own partition."""
    run_id = uuid4()
    keys = [f"u{n}" for n in range(30)]
    messages: list[Any] = []
    offsets = {0: 0, 1: 0}
    for version in range(4):
        by_partition: dict[int, list[RecordEvent]] = {0: [], 1: []}
        for sourced_id in keys:
            payload = {"sourcedId": sourced_id, "version": version}
            r = record(sourced_id, payload, run_id=run_id)
            by_partition[_chosen(r.key(), 2)].append(r)
        for partition, batch in by_partition.items():
            messages.append(batch_message(offsets[partition], batch, partition))
            offsets[partition] += 1

    def judge(event: RecordEvent) -> Outcome:
        if event.sourced_id == "u7" and event.payload["version"] == 2:
            return Outcome(None, [Finding(code="x", severity=Severity.ERROR, message="m")])
        return Outcome(event)

    stage = make_stage(PerRecord(judge), in_partitions=2, out_partitions=5)
    producer = await process(stage, messages, FakeConsumer(2))
    versions: dict[str, list[int | str]] = {}
    partitions: dict[str, set[int | None]] = {}
    for out_partition, sent in producer.batches():
        for r in events.records_of(sent):
            seen = r.operation is events.Operation.SEEN
            versions.setdefault(r.sourced_id, []).append("seen" if seen else r.payload["version"])
            partitions.setdefault(r.sourced_id, set()).add(out_partition)
    assert versions == {
        k: [0, 1, "seen", 3] if k == "u7" else [0, 1, 2, 3] for k in keys
    }  # fmt: skip
    assert partitions == {k: {_chosen(f"d1:users:{k}".encode(), 5)} for k in keys}


async def test_a_large_batch_goes_out_in_frames_in_its_order() -> None:
    run_id = uuid4()
    batch = [record(f"u{n:04}", run_id=run_id) for n in range(2500)]
    producer = await process(make_stage(PerRecord(_judge)), [batch_message(0, batch)])
    sizes = [len(sent.records) for _, sent in producer.batches()]
    assert sizes == [1000, 1000, 500]
    assert [r.sourced_id for r in producer.records()] == [r.sourced_id for r in batch]


async def test_unchanged_lists_go_where_their_records_go() -> None:
    listed = {f"u{n}": f"h{n}" for n in range(30)}
    event = events.unchanged_list(tenant="d1", source="csv", run_id=uuid4(),
                                  entity=EntityType.USER, listed=listed)  # fmt: skip
    value = events.encode(event)
    for out_partitions in (3, 4):
        stage = make_stage(PerRecord(_judge), out_partitions=out_partitions)
        producer = await process(stage, [message(0, value, event.key(), partition=1)])
        sent = producer.on(TOPICS.validated)
        if out_partitions == 3:  # in place, untouched
            assert [(s.key, s.value, s.partition) for s in sent] == [(event.key(), value, 1)]
            continue
        # Another partition count: split so that each id sits where its record's key goes.
        assert len(sent) > 1
        assert len({s.key for s in sent}) == len(sent)
        placed = {}
        for s in sent:
            part = events.decode(s.value or b"")
            assert isinstance(part, UnchangedList)
            placed.update({sid: s.partition for sid in part.listed})
        assert placed == {sid: _chosen(f"d1:users:{sid}".encode(), 4) for sid in listed}


async def test_a_marker_goes_on_after_everything_its_partition_carried_before_it() -> None:
    run_id = uuid4()
    marker = run_end_event(tenant="d1", source="csv", run_id=run_id, fanout=3, counts={})
    ended: list[object] = []

    class Handler(PerRecord):
        def on_run_end(self, run_id: object) -> None:
            ended.append(run_id)

    batch = [record(f"u{n}", run_id=run_id) for n in range(5)]
    listed = events.unchanged_list(tenant="d1", source="csv", run_id=run_id,
                                   entity=EntityType.USER, listed={"u9": "h"})  # fmt: skip
    messages = [
        batch_message(0, batch[:3]),
        message(1, events.encode(marker), marker.key()),
        batch_message(0, batch[3:], 1),
        message(1, events.encode(listed), listed.key(), partition=1),
    ]
    producer = await process(make_stage(Handler(_judge)), messages)
    kinds = [type(events.decode(s.value or b"")).__name__ for s in producer.on(TOPICS.validated)]
    assert kinds == ["RecordBatch", "RecordBatch", "UnchangedList", "RunEnd", "RunEnd", "RunEnd"]
    forwarded = [events.decode(s.value or b"") for s in producer.on(TOPICS.validated)[3:]]
    assert all(isinstance(m, RunEnd) for m in forwarded)
    assert [s.partition for s in producer.on(TOPICS.validated)[3:]] == [0, 1, 2]
    assert {(m.marker.origin_partition, m.marker.origin_count) for m in forwarded  # type: ignore[union-attr]
            } == {(0, 3)}  # fmt: skip
    assert ended == [run_id]


async def test_a_stage_waits_for_what_it_sent_before_committing() -> None:
    """The commit follows every send's acknowledgement (the fake acknowledges at once; here a
    send that never completes keeps the commit from happening)."""

    class Stuck(FakeProducer):
        async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[None]:
            await super().send(*args, **kwargs)
            return asyncio.get_running_loop().create_future()  # never acknowledged

    consumer = FakeConsumer()
    stage = make_stage(PerRecord(_judge))
    tp = TopicPartition(TOPICS.fetched, 0)
    polled = {tp: [batch_message(0, [record("u1")])]}
    task = asyncio.create_task(stage._process(cast(Any, consumer), cast(Any, Stuck()), polled))
    await asyncio.sleep(0.05)
    assert consumer.committed == {}
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_rebalance_during_a_poll_leaves_moved_partitions_uncommitted_and_goes_on() -> None:
    """Partitions taken away while a poll was handled are not committed (their new owner reads
    them again); a commit the broker refuses after a rebalance does not stop the stage."""
    stage = make_stage(PerRecord(_judge))
    consumer = FakeConsumer()
    consumer.revoked = {1}
    polled = [batch_message(0, [record("u1")], 0), batch_message(0, [record("u2")], 1)]
    producer = await process(stage, polled, consumer)
    assert set(consumer.committed) == {TopicPartition(TOPICS.fetched, 0)}
    assert [r.sourced_id for r in producer.records()] == ["u1", "u2"]  # both went on

    refusing = FakeConsumer()
    refusing.commit_error = IllegalStateError("Partition is not assigned")
    producer = await process(stage, [batch_message(0, [record("u3")], 0)], refusing)
    assert refusing.committed == {}
    assert [r.sourced_id for r in producer.records()] == ["u3"]


async def test_progress_counts_each_batchs_passed_and_rejected_records() -> None:
    progress = StageProgress(cast(asyncpg.Pool, None), "validator")  # counts; never flushed here
    run_id = uuid4()
    batch = [record("a", run_id=run_id), record("bad", run_id=run_id), record("c", run_id=run_id)]
    listed = events.unchanged_list(tenant="d1", source="csv", run_id=run_id,
                                   entity=EntityType.USER, listed={"u8": "h", "u9": "h"})  # fmt: skip
    messages = [
        batch_message(5, batch, 1),
        message(6, events.encode(listed), listed.key(), partition=1),
    ]
    await process(make_stage(PerRecord(_judge), progress=progress), messages)
    tally = progress._tallies[("d1", run_id, 1)]
    assert (tally.passed, tally.rejected) == (2 + 2, 1)
    assert (tally.first_offset, tally.last_offset) == (5, 6)
