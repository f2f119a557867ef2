"""Every finding of every stage (findings topic), one row each, for the run report.

One event carries the findings a stage made about one record or file. A row's key is a hash of
what identifies the finding, so redelivered events, and file findings a stage sends once per
partition, are stored once.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from aiokafka import ConsumerRecord
from pydantic import TypeAdapter
from rostersync_libs.findings import Finding, FindingsEvent

from rostersync_writer.convert import text, uuid
from rostersync_writer.decoding import decode_or_skip

FINDINGS_EVENT = TypeAdapter(FindingsEvent)


INSERT_SQL = (
    "INSERT INTO findings (finding_id, tenant_id, run_id, stage, entity, sourced_id, rejected,"
    " code, severity, file, row, column_name, value, message)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    " ON CONFLICT (finding_id) DO NOTHING"
)


def finding_id(event: FindingsEvent, finding: Finding) -> UUID:
    """Deterministic: the same finding of the same record in the same run gets the same id."""
    identity = [
        event.tenant,
        event.run_id,
        event.stage,
        event.entity,
        event.sourced_id,
        finding.file,
        finding.row,
        finding.code,
        finding.column,
        finding.value,
    ]
    return UUID(bytes=hashlib.blake2b(orjson.dumps(identity), digest_size=16).digest())


def finding_rows(event: FindingsEvent) -> list[tuple[Any, ...]]:
    """One row per finding of the event, in INSERT_SQL's order."""
    return [
        (
            finding_id(event, f),
            text(event.tenant) or "",
            uuid(event.run_id),
            text(event.stage) or "",
            text(event.entity),
            text(event.sourced_id),
            event.rejected,
            text(f.code) or "",
            f.severity.value,
            text(f.file),
            f.row if f.row is not None and -(2**31) <= f.row < 2**31 else None,
            text(f.column),
            text(f.value),
            text(f.message) or "",
        )
        for f in event.findings
    ]


def decode_findings(message: ConsumerRecord[bytes, bytes]) -> FindingsEvent | None:
    return decode_or_skip(FINDINGS_EVENT, message, "findings event")


async def store_findings(
    conn: asyncpg.Connection, messages: list[ConsumerRecord[bytes, bytes]]
) -> int:
    """Store the findings of these events; returns how many findings they carried."""
    rows = [row for m in messages if (e := decode_findings(m)) for row in finding_rows(e)]
    if rows:
        await conn.executemany(INSERT_SQL, rows)
    return len(rows)
