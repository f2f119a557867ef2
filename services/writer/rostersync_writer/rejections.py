"""Rejections kept where an operator can read them: dead letters from the validator and the
mapper, and the writer's own (messages or records it cannot apply, see poison.py).

A rejection is found at its Kafka position and, since records travel in batches (v2), its index
in the batch (``source_index``; 0 for a whole message). A dead letter's value is one record with
its run's context (``RecordEvent.to_bytes``) or, for a message that was not an event, the
original bytes; its index is in its headers (``DeadLetter.index``).

Storing a rejection must never fail on what the rejected message holds: text is stripped of NUL
characters (PostgreSQL text and jsonb cannot hold them) and indexed columns are cut to fit an index
row; the event itself is kept whole otherwise.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import msgspec
import orjson
from aiokafka import ConsumerRecord
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.events import RecordEvent, RunEnd, UnchangedList
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, FindingsEvent, Severity, clip, findings_to_json

from rostersync_writer import findings as findings_table
from rostersync_writer.convert import strip_nul

Message: TypeAlias = ConsumerRecord[bytes, bytes]
# What a rejection says of itself: a record, or a whole event that is not one (a list, a marker).
Stored: TypeAlias = RecordEvent | UnchangedList | RunEnd
# A message (and the index of the record in its batch, 0 for a whole message), what it holds if
# it could be read, and why it is rejected.
Rejected: TypeAlias = tuple[Message, int, Stored | None, list[Finding]]

INSERT_SQL = (
    "INSERT INTO rejected_records (tenant_id, run_id, stage, entity, sourced_id, origin_file,"
    " origin_row, findings, event, source_topic, source_partition, source_offset, source_index)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13)"
    " ON CONFLICT (source_topic, source_partition, source_offset, source_index) DO NOTHING"
)
# The writer's own: once per position and index (redelivered), and once per record and run (the
# partial unique index of the writer's refusals: a copy re-sent after a restart is the same one).
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


def event_json(event: Stored) -> str:
    """The event as jsonb text (jsonb cannot hold ``\\u0000``: NULs are dropped)."""
    encoded = msgspec.json.encode(event)
    if b"\\u0000" not in encoded:
        return encoded.decode()
    return orjson.dumps(strip_nul(orjson.loads(encoded))).decode()


def decoded(message: Message) -> RecordEvent | None:
    """The record a dead letter holds (None: the original bytes of a message that was none)."""
    try:
        return RecordEvent.from_bytes(message.value) if message.value is not None else None
    except msgspec.DecodeError:
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
    event: Stored | None,
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
    record = event if isinstance(event, RecordEvent) else None
    origin = record.origin if record else None
    row = origin.row if origin else None
    sourced_id = record.sourced_id if record else None
    entity = event.entity if isinstance(event, RecordEvent | UnchangedList) else None
    return (
        text(tenant, MAX_TENANT) or "?",
        event.run_id if event else None,
        text(letter.stage, 100) or "?",
        entity.value if entity else None,
        text(sourced_id, sourced_id_limit or len(sourced_id or "")),
        text(origin.file) if origin else None,
        row if row is not None and 0 <= row < 2**31 else None,
        findings_to_json(letter.findings).decode(),
        event_json(event) if event is not None and with_event else None,
        text(letter.topic) or "?",
        letter.partition,
        letter.offset,
        letter.index,
    )


async def store_rejections(conn: asyncpg.Connection, messages: list[Message]) -> None:
    """Dead letters of the validator and the mapper, with the reasons in their headers."""
    if messages:
        rows = [rejection_row(m, _letter(m), decoded(m)) for m in messages]
        await conn.executemany(INSERT_SQL, rows)


def own_letter(message: Message, index: int, found: list[Finding]) -> DeadLetter:
    return DeadLetter(
        stage="writer",
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        findings=found,
        index=index,
    )


def own_row(
    message: Message,
    index: int,
    event: Stored | None,
    found: list[Finding],
    *,
    with_event: bool = True,
) -> tuple[Any, ...]:
    """The row of a message, or of the record at ``index`` in its batch, the writer itself
    rejects (OWN_SQL)."""
    letter = own_letter(message, index, found)
    return rejection_row(
        message, letter, event, with_event=with_event, sourced_id_limit=MAX_SOURCED_ID
    )


def own_finding_rows(event: Stored | None, found: list[Finding]) -> list[tuple[Any, ...]]:
    """The findings of a rejected event, for the run report (events only: a run to file them)."""
    if event is None:
        return []
    record = event if isinstance(event, RecordEvent) else None
    entity = event.entity if isinstance(event, RecordEvent | UnchangedList) else None
    report = FindingsEvent(
        tenant=text(event.tenant, MAX_TENANT) or "?",
        run_id=str(event.run_id),
        stage="writer",
        entity=entity.value if entity else None,
        sourced_id=text(record.sourced_id, MAX_SOURCED_ID) if record else None,
        rejected=True,
        findings=found,
    )
    return findings_table.finding_rows(report)


async def store_own(conn: asyncpg.Connection, rejected: list[Rejected]) -> None:
    """Messages and records the writer cannot apply, with why (findings too, when they are
    events)."""
    if not rejected:
        return
    await conn.executemany(OWN_SQL, [own_row(m, i, e, found) for m, i, e, found in rejected])
    rows = [row for _, _, e, found in rejected for row in own_finding_rows(e, found)]
    if rows:
        await conn.executemany(findings_table.INSERT_SQL, rows)
