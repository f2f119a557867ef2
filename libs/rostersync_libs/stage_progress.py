"""How far each stage is with a running run: records passed and rejected so far, per stage
(the fetcher's published total: ``rostersync_fetcher.published_progress``).

The validator and mapper count in memory, per (tenant, run, input partition), and write what they
counted at most once every ``interval`` seconds (and soon after a run's end marker) in one
statement, from a task beside the stage's loop: a slow or absent database never holds records
up (what could not be written is kept for the next flush). ``run_stage_progress`` is made by the
writer's migration 0018; until it exists the counts are dropped.

Redelivery: each row keeps the highest input offset counted. A flush whose offsets were all
counted before (re-read after a restart or a rebalance) adds nothing; one that straddles that
offset adds the share of its counts past it. So the numbers are at-least-once approximations
while a run runs; its final counts are the writer's (``sync_runs``, ``rejected_records``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)


def _added(column: str) -> str:
    """What a flush adds to ``column``: nothing already counted, a straddling flush's share."""
    return (
        f"s.{column} + CASE WHEN excluded.last_offset <= s.last_offset THEN 0"
        f" WHEN excluded.first_offset > s.last_offset THEN excluded.{column}"
        f" ELSE excluded.{column} * (excluded.last_offset - s.last_offset)"
        " / (excluded.last_offset - excluded.first_offset + 1) END"
    )


FLUSH_SQL = f"""
INSERT INTO run_stage_progress AS s
    (tenant_id, run_id, stage, partition, passed, rejected, first_offset, last_offset)
SELECT u.tenant_id, u.run_id, $1, u.partition, u.passed, u.rejected, u.first_offset, u.last_offset
FROM unnest($2::text[], $3::uuid[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[],
            $8::bigint[]) AS u(tenant_id, run_id, partition, passed, rejected, first_offset,
                               last_offset)
ORDER BY 1, 2, 4
ON CONFLICT (tenant_id, run_id, stage, partition) DO UPDATE SET
    passed = {_added("passed")},
    rejected = {_added("rejected")},
    first_offset = LEAST(s.first_offset, excluded.first_offset),
    last_offset = GREATEST(s.last_offset, excluded.last_offset),
    updated_at = now()
"""

Key = tuple[str, UUID, int]  # tenant, run, input partition
Verdict = tuple[str, UUID, int, bool]  # tenant, run, input partition, rejected


@dataclass
class Tally:
    first_offset: int
    last_offset: int
    passed: int = 0
    rejected: int = 0

    def merge(self, other: Tally) -> None:
        self.first_offset = min(self.first_offset, other.first_offset)
        self.last_offset = max(self.last_offset, other.last_offset)
        self.passed += other.passed
        self.rejected += other.rejected


class StageProgress:
    """One stage's counts of the runs it handles, written about once a second."""

    def __init__(self, pool: asyncpg.Pool, stage: str, interval: float = 1.0) -> None:
        self._pool, self._stage, self._interval = pool, stage, interval
        self._tallies: dict[Key, Tally] = {}
        self._next_flush = time.monotonic() + interval
        self._flushing: asyncio.Task[None] | None = None
        self._warned_at = float("-inf")

    def add(
        self,
        key: Key,
        first_offset: int,
        last_offset: int,
        *,
        passed: int = 0,
        rejected: int = 0,
    ) -> None:
        """Records of ``key`` among input offsets ``first_offset``..``last_offset``."""
        counted = Tally(first_offset, last_offset, passed, rejected)
        tally = self._tallies.get(key)
        if tally is None:
            self._tallies[key] = counted
        else:
            tally.merge(counted)

    def add_batch(self, verdicts: list[Verdict], ranges: dict[int, tuple[int, int]]) -> None:
        """A batch's verdicts, one (tenant, run, partition, rejected) per record: counted in
        one pass (a list append per record is all the stage's loop pays)."""
        for (tenant, run_id, partition, rejected), n in Counter(verdicts).items():
            first, last = ranges[partition]
            self.add((tenant, run_id, partition), first, last,
                     passed=0 if rejected else n, rejected=n if rejected else 0)  # fmt: skip

    def soon(self) -> None:
        """A run ended on a partition: its last counts go at the next tick."""
        self._next_flush = 0.0

    def tick(self) -> None:
        """Called by the stage's loop after every poll: starts a flush when one is due."""
        if time.monotonic() < self._next_flush or not self._tallies:
            return
        if self._flushing is not None and not self._flushing.done():
            return  # one at a time; what came meanwhile goes with the next
        self._next_flush = time.monotonic() + self._interval
        tallies, self._tallies = self._tallies, {}
        self._flushing = asyncio.create_task(self._flush(tallies))

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is left (the stage is stopping)."""
        with contextlib.suppress(TimeoutError):
            if self._flushing is not None:
                await asyncio.wait_for(self._flushing, timeout)
            if self._tallies:
                tallies, self._tallies = self._tallies, {}
                await asyncio.wait_for(self._flush(tallies), timeout)

    async def _flush(self, tallies: dict[Key, Tally]) -> None:
        keys = list(tallies)  # the statement writes them in key order (no deadlock between two)
        rows = [tallies[k] for k in keys]
        try:
            await self._pool.execute(
                FLUSH_SQL,
                self._stage,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [t.passed for t in rows],
                [t.rejected for t in rows],
                [t.first_offset for t in rows],
                [t.last_offset for t in rows],
                timeout=10,
            )
        except asyncpg.UndefinedTableError:
            self._warn("no run_stage_progress table yet (the writer makes it): counts dropped")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            self._warn(f"progress not written ({type(exc).__name__}): kept for the next flush")
            for key, tally in tallies.items():  # nothing lost: merged with what came meanwhile
                if key in self._tallies:
                    tally.merge(self._tallies[key])
                self._tallies[key] = tally

    def _warn(self, text: str) -> None:
        if time.monotonic() - self._warned_at >= 60:  # at most once a minute
            self._warned_at = time.monotonic()
            log.warning("%s: %s", self._stage, text)
