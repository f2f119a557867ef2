"""Writer instances sharing partitions (pure logic): a rebalance hands partitions over only
between two batch transactions, a batch fetched before it is dropped, and a batch a deadlock
rolled back is applied again (two writers on the real stack: tests/integration/test_scale_out.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from rostersync_writer import app
from rostersync_writer.app import Applied, apply_batch
from rostersync_writer.positions import Handover


async def test_a_revocation_waits_for_the_batch_being_applied() -> None:
    handover = Handover()
    steps: list[str] = []
    committed = asyncio.Event()

    async def lane() -> None:
        async with handover.applying:
            steps.append("applying")
            await committed.wait()
            steps.append("committed")

    applying = asyncio.create_task(lane())
    await asyncio.sleep(0)
    revoking = asyncio.create_task(handover.revoke())
    await asyncio.sleep(0.01)
    assert not revoking.done(), "the partitions left while their batch was being applied"
    committed.set()
    await asyncio.gather(applying, revoking)
    steps.append("revoked")
    assert steps == ["applying", "committed", "revoked"]


async def test_a_revocation_marks_batches_fetched_before_it() -> None:
    handover = Handover()
    fetched_at = handover.generation
    await handover.revoke()
    assert handover.generation != fetched_at
    assert not handover.applying.locked()


async def test_a_batch_rolled_back_by_a_deadlock_is_applied_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []

    async def apply_once(*_: Any) -> Applied:
        attempts.append(1)
        if len(attempts) < 3:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return Applied(records=7)

    monkeypatch.setattr(app, "apply_once", apply_once)
    applied = await apply_batch(None, "g", None, None, {}, {})  # type: ignore[arg-type]
    assert applied.records == 7
    assert len(attempts) == 3


async def test_a_batch_that_keeps_deadlocking_ends_the_lane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def apply_once(*_: Any) -> Applied:
        raise asyncpg.SerializationError("could not serialize access")

    monkeypatch.setattr(app, "apply_once", apply_once)
    with pytest.raises(asyncpg.SerializationError):
        await apply_batch(None, "g", None, None, {}, {})  # type: ignore[arg-type]
