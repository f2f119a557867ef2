"""Rejections kept where an operator can read them: dead letters from the validator and the
mapper, and the writer's own (messages it cannot apply, see poison.py).

Storing a rejection must never fail on what the rejected message holds: text is stripped of NUL
characters (PostgreSQL text and jsonb cannot hold them) and indexed columns are cut to fit an index
row; the event itself is kept whole otherwise.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.envelope import Envelope
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, FindingsEvent, Severity, clip, findings_to_json

from rostersync_writer import findings as findings_table
from rostersync_writer.convert import strip_nul

Message: TypeAlias = ConsumerRecord[bytes, bytes]
Rejected: TypeAlias = tuple[Message, Envelope | None, list[Finding]]

INSERT_SQL = (
    "INSERT INTO rejected_records (tenant_id, run_id, stage, entity, sourced_id, origin_file,"
    " origin_row, findings, event, source_topic, source_partition, source_offset)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12)"
    " ON CONFLICT (source_topic, source_partition, source_offset, source_index) DO NOTHING"
)
# The writer's own: once per position (redelivered), and once per record and run (the partial
# unique index of the writer's refusals: a copy re-sent after a restart is the same rejection).
OWN_SQL = INSERT_SQL.removesuffix(
    " (source_topic, source_partition, source_offset, source_index) DO NOTHING"
)
OWN_SQL += " DO NOTHING"

# Indexed text cut to fit a btree row (2,704 bytes): 200 + 400 characters of up to 4 bytes each,
# with a run id and an entity name.
MAX_TENANT = 200
MAX_SOURCED_ID = 400
MAX_TEXT = 1000


def text(value: str | None, limit: int = MAX_TEXT) -> str | None:
    """Text PostgreSQL can store and index: NULs dropped, cut to ``limit`` characters."""
    return clip(value.replace("\x00", ""), limit) if value else None


def event_json(event: Envelope) -> str:
    """The event as jsonb text (jsonb cannot hold ``\\u0000``: NULs are dropped)."""
    encoded = event.model_dump_json()
    if "\\u0000" not in encoded:
        return encoded
    return orjson.dumps(strip_nul(orjson.loads(encoded))).decode()


def decoded(message: Message) -> Envelope | None:
    """The message's event, if it is one."""
    try:
        return Envelope.from_bytes(message.value) if message.value is not None else None
    except ValidationError:
        return None


def _letter(message: Message) -> DeadLetter:
    """The dead letter's reasons; a message without them is kept all the same, and says so."""
    try:
        return DeadLetter.from_headers(message.headers)
    except (KeyError, ValueError):
        finding = Finding(
            code=Code.DEAD_LETTER_WITHOUT_REASONS,
            severity=Severity.ERROR,
            message="a dead letter without rostersync's error headers",
        )
        return DeadLetter(
            stage="unknown",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            findings=[finding],
        )


def rejection_row(
    message: Message | None,
    letter: DeadLetter,
    event: Envelope | None,
    *,
    with_event: bool = True,
    sourced_id_limit: int | None = None,
) -> tuple[Any, ...]:
    """One row of INSERT_SQL: the letter's reasons and position, what the event says of itself."""
    if event is not None:
        tenant = event.tenant
    else:
        key = message.key if message is not None else None
        tenant = (key or b"?").decode(errors="replace").split(":")[0]
    origin = event.origin if event else None
    row = origin.row if origin else None
    sourced_id = event.sourced_id if event else None
    return (
        text(tenant, MAX_TENANT) or "?",
        event.run_id if event else None,
        text(letter.stage, 100) or "?",
        event.entity.value if event and event.entity else None,
        text(sourced_id, sourced_id_limit or len(sourced_id or "")),
        text(origin.file) if origin else None,
        row if row is not None and 0 <= row < 2**31 else None,
        findings_to_json(letter.findings).decode(),
        event_json(event) if event is not None and with_event else None,
        text(letter.topic) or "?",
        letter.partition,
        letter.offset,
    )


async def store_rejections(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """Dead letters of the validator and the mapper, with the reasons in their headers."""
    if messages:
        rows = [rejection_row(m, _letter(m), decoded(m)) for m in messages]
        await conn.executemany(INSERT_SQL, rows)


def own_letter(message: Message, found: list[Finding]) -> DeadLetter:
    return DeadLetter(
        stage="writer",
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        findings=found,
    )


def own_row(
    message: Message, event: Envelope | None, found: list[Finding], *, with_event: bool = True
) -> tuple[Any, ...]:
    """The row of a message the writer itself rejects (OWN_SQL)."""
    letter = own_letter(message, found)
    return rejection_row(
        message, letter, event, with_event=with_event, sourced_id_limit=MAX_SOURCED_ID
    )


def own_finding_rows(event: Envelope | None, found: list[Finding]) -> list[tuple[Any, ...]]:
    """The findings of a rejected event, for the run report (events only: a run to file them)."""
    if event is None:
        return []
    report = FindingsEvent(
        tenant=text(event.tenant, MAX_TENANT) or "?",
        run_id=str(event.run_id),
        stage="writer",
        entity=event.entity.value if event.entity else None,
        sourced_id=text(event.sourced_id, MAX_SOURCED_ID),
        rejected=True,
        findings=found,
    )
    return findings_table.finding_rows(report)


async def store_own(conn: asyncpg.Connection, rejected: list[Rejected]) -> None:
    """Messages the writer cannot apply, with why (findings too, when they are events)."""
    if not rejected:
        return
    await conn.executemany(OWN_SQL, [own_row(m, e, found) for m, e, found in rejected])
    rows = [row for _, e, found in rejected for row in own_finding_rows(e, found)]
    if rows:
        await conn.executemany(findings_table.INSERT_SQL, rows)
