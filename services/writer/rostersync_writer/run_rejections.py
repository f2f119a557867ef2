"""What a run rejected, kept per run so that what points at it is rejected too (integrity.py).

Records a stage rejected reach the writer as ``seen`` events carrying their error codes, on the
record's own partition, in order. The writer's own refusals (a required reference to a rejected
or missing record) are stored like a stage's: in ``rejected_records`` and ``findings`` for the
report, in ``run_rejections`` so the chain goes on (a rejected class rejects its enrollments), and
marked seen, so a bulk run's sweep keeps an existing good row whose new version was refused.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

import asyncpg
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.events import EntityType, RecordEvent
from rostersync_libs.findings import Finding

from rostersync_writer import findings as findings_table
from rostersync_writer.rejections import MAX_SOURCED_ID, OWN_SQL, own_finding_rows, rejection_row
from rostersync_writer.tables import TABLES

NOTE_SQL = (
    "INSERT INTO run_rejections (tenant_id, run_id, entity, sourced_id, internal_id, origin_file,"
    " origin_row, codes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[])"
    " ON CONFLICT (tenant_id, run_id, entity, sourced_id) DO NOTHING"
)
# The writer's refusals have no Kafka position of their own; this pseudo-topic and a hash of the
# record and run keep them once each (rejected_records is deduplicated by position).
WRITER_TOPIC = "rostersync.writer.references"


def _row_number(event: RecordEvent) -> int | None:
    row = event.origin.row if event.origin else None
    return row if row is not None and 0 <= row < 2**31 else None


def _note_row(event: RecordEvent, codes: list[str]) -> tuple[object, ...]:
    origin = event.origin
    return (
        event.tenant,
        event.run_id,
        event.entity.value,
        event.sourced_id,
        event.internal_id,
        origin.file if origin else None,
        _row_number(event),
        codes,
    )


async def note_rejected(conn: asyncpg.Connection, seen: list[RecordEvent]) -> None:
    """Remember the records a stage rejected in their run."""
    rows = [_note_row(e, e.rejected_codes or ["rejected"]) for e in seen if e.sourced_id]
    if rows:
        await conn.executemany(NOTE_SQL, rows)


def _offset(event: RecordEvent) -> int:
    identity = f"{event.tenant}\x00{event.run_id}\x00{event.entity}\x00{event.sourced_id}"
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest()) >> 1


async def refuse(
    conn: asyncpg.Connection, entity: EntityType, refused: list[tuple[RecordEvent, list[Finding]]]
) -> None:
    """Reject these records of ``entity`` for what they point at; store why, mark them seen."""
    if not refused:
        return
    await conn.executemany(
        NOTE_SQL,
        [_note_row(e, sorted({f.code for f in found})) for e, found in refused],
    )
    await conn.executemany(
        OWN_SQL,
        [
            rejection_row(
                None,
                DeadLetter(stage="writer", topic=WRITER_TOPIC, partition=0,
                           offset=_offset(e), findings=found),
                e,
                sourced_id_limit=MAX_SOURCED_ID,
            )
            for e, found in refused
        ],
    )  # fmt: skip
    finding_rows = [row for e, found in refused for row in own_finding_rows(e, found)]
    await conn.executemany(findings_table.INSERT_SQL, finding_rows)
    await mark_seen(conn, entity, [e for e, _ in refused])


async def mark_seen(
    conn: asyncpg.Connection, entity: EntityType, events: list[RecordEvent]
) -> None:
    """Rejected records were in the run: bump their last run so the sweep keeps them."""
    await mark_seen_in(conn, entity, [(e.tenant, e.sourced_id, e.run_id) for e in events])


async def mark_seen_in(
    conn: asyncpg.Connection, entity: EntityType, seen: list[tuple[str, str, UUID]]
) -> None:
    """These records (tenant, sourcedId) were seen in these runs: their rows say so."""
    if seen:
        await conn.executemany(
            f"UPDATE {TABLES[entity].name} SET last_seen_run = $3"
            " WHERE tenant_id = $1 AND sourced_id = $2 AND last_seen_run < $3",
            seen,
        )
