"""What a middle stage says about what it read: findings and dead letters, never over the limit.

Findings are bounded (:func:`rostersync_libs.findings.bounded`); a dead letter carries the
original (a whole message, or one record of a batch with its run's context) with the reasons in
its headers, and when both would be too large, the reasons and where to read the original (its
topic keeps it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TypeAlias
from uuid import UUID

from aiokafka import AIOKafkaProducer

from rostersync_libs.dlq import DeadLetter
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, FindingsEvent, Severity, bounded, clip

log = logging.getLogger(__name__)

Headers: TypeAlias = list[tuple[str, bytes]]
Sent: TypeAlias = asyncio.Future[object]

# The largest message a stage sends: under Kafka's default limit (``message.max.bytes``,
# 1,048,588 bytes with the batch's framing); an output above it is never sent as it is.
MAX_MESSAGE_BYTES = 1_000_000


def message_size(value: bytes | None, key: bytes | None, headers: Headers | None = None) -> int:
    """What a message weighs against the limit (its record framing aside)."""
    size = len(value or b"") + len(key or b"")
    return size + sum(len(k) + len(v) for k, v in headers or ())


@dataclass(frozen=True)
class Where:
    """Where something a stage read came from: a message, and a record's index in its batch."""

    topic: str
    partition: int
    offset: int
    index: int | None = None  # None: the whole message

    def __str__(self) -> str:
        at = f"{self.topic}[{self.partition}]@{self.offset}"
        return at if self.index is None else f"{at}, record {self.index} of its batch"


@dataclass(frozen=True)
class Letters:
    """One stage's findings and dead letters."""

    stage: str
    findings_topic: str
    dlq_topic: str
    max_message_bytes: int = MAX_MESSAGE_BYTES

    async def findings(
        self,
        producer: AIOKafkaProducer,
        *,
        tenant: str,
        run_id: UUID,
        entity: str | None,
        sourced_id: str | None,
        found: list[Finding],
        rejected: bool,
    ) -> Sent:
        report = FindingsEvent(
            tenant=tenant,
            run_id=str(run_id),
            stage=self.stage,
            entity=entity,
            sourced_id=clip(sourced_id, 1000) if sourced_id else None,
            rejected=rejected,
            findings=bounded(found),
        )
        value, key = report.model_dump_json(exclude_none=True).encode(), report.key()
        if message_size(value, key) > self.max_message_bytes:
            # Bounded findings fit by construction: only names far longer than any tenant's get
            # here. Sent as a count, with the names cut.
            log.error(
                "%s: a findings event of %d bytes: sent as a count only", self.stage, len(value)
            )
            report = report.model_copy(
                update={
                    "tenant": clip(report.tenant, 200),
                    "sourced_id": clip(report.sourced_id, 200) if report.sourced_id else None,
                    "findings": bounded(found, 0),
                }
            )
            value, key = report.model_dump_json(exclude_none=True).encode(), report.key()
        fut: Sent = await producer.send(self.findings_topic, value, key=key)
        return fut

    async def dead_letter(
        self,
        producer: AIOKafkaProducer,
        where: Where,
        value: bytes | None,
        key: bytes | None,
        found: list[Finding],
    ) -> Sent:
        """``value`` (the original, byte for byte) with the reasons in its headers; when that
        would be too large, the reasons and where to read the original."""
        letter = self._letter(where, found)
        headers = letter.headers()
        if message_size(value, key, headers) > self.max_message_bytes:
            omitted = Finding(
                code=Code.MESSAGE_TOO_LARGE,
                severity=Severity.ERROR,
                message=f"the original ({message_size(value, key):,} bytes) is not copied into"
                f" its dead letter: read it at {where}",
            )
            value, headers = None, self._letter(where, [omitted, *found]).headers()
            if message_size(value, key, headers) > self.max_message_bytes:
                key = None
        fut: Sent = await producer.send(self.dlq_topic, value, key=key, headers=headers)
        return fut

    def _letter(self, where: Where, found: list[Finding]) -> DeadLetter:
        return DeadLetter(
            stage=self.stage,
            topic=where.topic,
            partition=where.partition,
            offset=where.offset,
            findings=bounded(found),
            index=where.index or 0,
        )
