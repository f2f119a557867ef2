"""What a middle stage counts of one poll: records in, out and rejected per tenant (metrics, one
``inc`` per tenant and poll) and, per input batch, the records passed and rejected of its run
(:mod:`rostersync_libs.stage_progress`, one count per batch, not per record)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from uuid import UUID

from rostersync_libs.metrics import RECORDS_IN, RECORDS_OUT, RECORDS_REJECTED
from rostersync_libs.stage_progress import StageProgress


@dataclass(frozen=True)
class Tally:
    """One input message's records: how many went in (0 for a list: it is not handled), how
    many passed and how many were rejected."""

    tenant: str
    run_id: UUID
    partition: int
    offset: int
    received: int
    passed: int
    rejected: int


def count(stage: str, tallies: list[Tally], progress: StageProgress | None) -> None:
    """The poll's counts, once its output is acknowledged and its offsets committed."""
    received: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for t in tallies:
        received[t.tenant] += t.received
        rejected[t.tenant] += t.rejected
        if progress is not None:
            progress.add((t.tenant, t.run_id, t.partition), t.offset, t.offset,
                         passed=t.passed, rejected=t.rejected)  # fmt: skip
    for tenant, n in received.items():
        if n:
            RECORDS_IN.labels(stage, tenant).inc(n)
            RECORDS_OUT.labels(stage, tenant).inc(n - rejected[tenant])
    for tenant, n in rejected.items():
        if n:
            RECORDS_REJECTED.labels(stage, tenant).inc(n)
