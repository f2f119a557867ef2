"""The fetcher's command intake: polling goes on, one command at a time per tenant."""

from __future__ import annotations

import asyncio
from typing import Any, cast
from uuid import uuid4

from aiokafka import TopicPartition
from rostersync_fetcher.intake import CommandIntake
from rostersync_libs.commands import HoldDecision, SyncRequested

TP = TopicPartition("commands", 0)


class Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value


class Consumer:
    """Hands out one batch, then nothing; records commits."""

    def __init__(self, values: list[bytes]) -> None:
        self.batches = [{TP: [Message(n, v) for n, v in enumerate(values)]}]
        self.commits: list[int] = []

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        if self.batches:
            return self.batches.pop()
        await asyncio.sleep(0.01)
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])


def command(tenant: str, n: int) -> bytes:
    """A sync command; its source names it in the log."""
    return SyncRequested(tenant=tenant, source=str(n)).model_dump_json().encode()


async def test_commands_run_one_at_a_time_per_tenant_and_a_failure_stops_nobody() -> None:
    log: list[str] = []
    stop = asyncio.Event()

    async def handle(sync: SyncRequested) -> None:
        log.append(f"start {sync.tenant}{sync.source}")
        await asyncio.sleep(0.05)
        log.append(f"end {sync.tenant}{sync.source}")
        if sync.source == "1":
            raise RuntimeError("the source is gone")

    consumer = Consumer([command("a", 1), command("a", 2), command("b", 3)])
    intake = CommandIntake(cast(Any, consumer), handle)
    task = asyncio.create_task(intake.run(stop))
    await asyncio.sleep(0.02)
    assert consumer.commits == [3]  # taken, committed, while the commands still run
    await asyncio.sleep(0.2)
    stop.set()
    await task
    # a2 waits for a1 (same tenant); b3 runs beside a1; a1's failure does not stop a2.
    assert log.index("end a1") < log.index("start a2")
    assert log.index("start b3") < log.index("end a1")
    assert "end a2" in log


async def test_malformed_commands_and_other_services_commands_are_skipped() -> None:
    taken: list[str] = []
    stop = asyncio.Event()

    async def handle(sync: SyncRequested) -> None:
        taken.append(sync.tenant)

    hold = HoldDecision(tenant="x", run_id=uuid4(), approve=True).model_dump_json().encode()
    consumer = Consumer([b"not json", b"[1, 2]", hold, command("springfield", 1)])
    task = asyncio.create_task(CommandIntake(cast(Any, consumer), handle).run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await task
    assert taken == ["springfield"]
    assert consumer.commits == [4]
