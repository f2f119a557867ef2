"""Dead letters from the validator and the mapper, kept where an operator can read them."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError
from rostersync_libs.dlq import DeadLetter
from rostersync_libs.envelope import Envelope
from rostersync_libs.findings import Finding, Severity

INSERT_SQL = (
    "INSERT INTO rejected_records (tenant_id, run_id, stage, entity, sourced_id, origin_file,"
    " origin_row, findings, event, source_topic, source_partition, source_offset)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12)"
    " ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING"
)


def _letter_here(
    message: ConsumerRecord[bytes, bytes], stage: str, code: str, text: str
) -> DeadLetter:
    """A dead letter for a message that came with no reasons of its own."""
    finding = Finding(code=code, severity=Severity.ERROR, message=text)
    return DeadLetter(
        stage=stage,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        findings=[finding],
    )


def _letter(message: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    """The dead letter's reasons; a message without them is kept all the same, and says so."""
    try:
        return DeadLetter.from_headers(message.headers)
    except (KeyError, ValueError):
        return _letter_here(
            message, "unknown", "dead_letter_without_reasons",
            "a dead letter without rostersync's error headers",
        )  # fmt: skip


def undecodable_letter(message: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    """A message on the mapped topic that is not a rostersync event: the writer's own rejection."""
    return _letter_here(
        message, "writer", "envelope_undecodable", "not a rostersync event; kept here, not written"
    )


def rejection_row(
    message: ConsumerRecord[bytes, bytes], letter: DeadLetter | None = None
) -> tuple[Any, ...]:
    letter = letter or _letter(message)
    findings = orjson.dumps([f.model_dump(mode="json", exclude_none=True) for f in letter.findings])
    try:
        event: Envelope | None = Envelope.from_bytes(message.value or b"")
    except ValidationError:
        event = None
    tenant = event.tenant if event else (message.key or b"?").decode(errors="replace").split(":")[0]
    origin = event.origin if event else None
    return (
        tenant,
        event.run_id if event else None,
        letter.stage,
        event.entity.value if event and event.entity else None,
        event.sourced_id if event else None,
        origin.file if origin else None,
        origin.row if origin else None,
        findings.decode(),
        event.model_dump_json() if event else None,
        letter.topic,
        letter.partition,
        letter.offset,
    )


async def store_rejections(
    conn: asyncpg.Connection, messages: list[ConsumerRecord[bytes, bytes]]
) -> None:
    if messages:
        await conn.executemany(INSERT_SQL, [rejection_row(m) for m in messages])


async def store_undecodable(
    conn: asyncpg.Connection, messages: list[ConsumerRecord[bytes, bytes]]
) -> None:
    if messages:
        rows = [rejection_row(m, undecodable_letter(m)) for m in messages]
        await conn.executemany(INSERT_SQL, rows)
