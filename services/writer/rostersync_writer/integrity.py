"""Whether a record may land: its required references, against the tables and its run's verdicts.

A record lands only when every required reference points at an active row that its run did not
reject. Records of one run reach the writer on several partitions at their own pace, so a target
that is in the run but has no verdict yet (not seen in the run, not rejected) is waited for: the
record is parked (parking.py) until it has one, and judged for good when its run completes
(``final``): then a target that is active is enough, and anything else rejects the record.

The writer's finding codes (errors under every profile):
- ``reference_rejected``: the target was rejected in the same run; the finding names where and why;
- ``reference_missing``: the target is not an active record of the tenant when the run completes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType, RecordEvent
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, Severity

from rostersync_writer.references import NOUN, TABLE_OF, Reference, required_references

REFERENCE_REJECTED = Code.REFERENCE_REJECTED
REFERENCE_MISSING = Code.REFERENCE_MISSING


@dataclass(frozen=True)
class TargetState:
    active: bool
    last_seen_run: UUID


@dataclass(frozen=True)
class Rejection:
    """A record its run rejected (run_rejections), as the chained finding cites it."""

    origin_file: str | None
    origin_row: int | None
    codes: list[str]

    def cite(self) -> str:
        where = ":".join(str(p) for p in (self.origin_file, self.origin_row) if p is not None)
        return " ".join(p for p in (where, ", ".join(self.codes)) if p)


@dataclass
class Verdict:
    waits: list[UUID] = field(default_factory=list)  # targets without a verdict: park
    findings: list[Finding] = field(default_factory=list)  # errors: reject

    @property
    def accepted(self) -> bool:
        return not self.waits and not self.findings


def _finding(event: RecordEvent, ref: Reference, code: Code, message: str) -> Finding:
    origin = event.origin
    return Finding(
        code=code,
        severity=Severity.ERROR,
        message=message,
        file=origin.file if origin else None,
        row=origin.row if origin else None,
        column=ref.column,
        value=ref.sourced_id,
    )


def judge(
    event: RecordEvent,
    refs: list[Reference],
    states: dict[UUID, TargetState],
    rejected: dict[UUID, Rejection],
    *,
    final: bool,
) -> Verdict:
    verdict = Verdict()
    for ref in refs:
        noun = NOUN[ref.target]
        rejection = rejected.get(ref.internal_id)
        if rejection is not None:
            message = f"that {noun} was rejected in this run ({rejection.cite()})"
            verdict.findings.append(_finding(event, ref, REFERENCE_REJECTED, message))
            continue
        state = states.get(ref.internal_id)
        settled = final or not ref.in_run or (state and state.last_seen_run >= event.run_id)
        if state is not None and state.active and settled:
            continue
        if not final:
            verdict.waits.append(ref.internal_id)
            continue
        why = "is archived" if state is not None else "is not a record of this tenant"
        message = f"{noun} {ref.sourced_id!r} {why}"
        verdict.findings.append(_finding(event, ref, REFERENCE_MISSING, message))
    if verdict.findings:
        verdict.waits = []
    return verdict


async def _states(
    conn: asyncpg.Connection, tenant: str, refs: Iterable[Reference]
) -> dict[UUID, TargetState]:
    by_target: dict[EntityType, set[UUID]] = defaultdict(set)
    for ref in refs:
        by_target[ref.target].add(ref.internal_id)
    states: dict[UUID, TargetState] = {}
    for target, ids in by_target.items():
        rows = await conn.fetch(
            f"SELECT internal_id, archived_at IS NULL AS active, last_seen_run"
            f" FROM {TABLE_OF[target]} WHERE tenant_id = $1 AND internal_id = ANY($2::uuid[])",
            tenant,
            list(ids),
        )
        states.update(
            (r["internal_id"], TargetState(r["active"], r["last_seen_run"])) for r in rows
        )
    return states


async def _rejected(
    conn: asyncpg.Connection, tenant: str, run_id: UUID, refs: Iterable[Reference]
) -> dict[UUID, Rejection]:
    rows = await conn.fetch(
        "SELECT internal_id, origin_file, origin_row, codes FROM run_rejections"
        " WHERE tenant_id = $1 AND run_id = $2 AND internal_id = ANY($3::uuid[])",
        tenant,
        run_id,
        list({ref.internal_id for ref in refs}),
    )
    return {
        r["internal_id"]: Rejection(r["origin_file"], r["origin_row"], list(r["codes"]))
        for r in rows
    }


async def judge_records(
    conn: asyncpg.Connection, events: list[RecordEvent], *, final: bool
) -> list[Verdict]:
    """One verdict per event, in order; lookups once per tenant and run."""
    refs = [required_references(e) for e in events]
    groups: dict[tuple[str, UUID], list[int]] = defaultdict(list)
    for i, event in enumerate(events):
        if refs[i]:
            groups[(event.tenant, event.run_id)].append(i)
    verdicts = [Verdict() for _ in events]
    for (tenant, run_id), members in groups.items():
        wanted = [ref for i in members for ref in refs[i]]
        states = await _states(conn, tenant, wanted)
        rejected = await _rejected(conn, tenant, run_id, wanted)
        for i in members:
            verdicts[i] = judge(events[i], refs[i], states, rejected, final=final)
    return verdicts
