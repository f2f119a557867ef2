"""Poison never loops: a message the writer cannot apply is kept as a rejection, and it goes on.

Two lines of defence, both ending in ``rejected_records`` (stage ``writer``, with the reason as a
finding, tenant and run when known):

- **Before the transaction** (``read_mapped``): a message on the mapped topic that is not an event
  (``empty_message``, ``envelope_undecodable``), lacks what its kind needs
  (``envelope_incomplete``), or cannot be written as it is (``writer_apply_failed``: an upsert
  without ``content_hash`` or ``internal_id``, a NUL character in a key). Caught here, not by the
  database, because such a record could be parked and only fail when released by another one.
- **In the transaction** (``isolate``): a batch whose transaction fails on data (PostgreSQL's data
  exception and integrity violation classes, and program limits such as an index row too large)
  is applied again, in a new transaction, halved under savepoints until the failing message is
  alone (each half applied as if Kafka had returned a smaller batch: per-partition order is
  kept). That message is stored with the database's reason (``writer_apply_failed``); everything
  else lands, and the positions advance in the same transaction as the rows.

A rejected record that has a key counts as seen, like a record a stage rejected: it goes through
the batch as a ``seen`` event carrying its code, so a bulk run's sweep keeps its row and what points
at it is refused with the chain named. Connection errors are not data: they still stop the writer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError
from rostersync_libs.envelope import Envelope, EventKind, Operation
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, clip
from rostersync_libs.stage import failure, missing_parts

from rostersync_writer.rejections import OWN_SQL, decoded, own_row, store_own

log = logging.getLogger(__name__)

Message: TypeAlias = ConsumerRecord[bytes, bytes]
Batches: TypeAlias = dict[TopicPartition, list[Message]]
T = TypeVar("T")

APPLY_FAILED = Code.WRITER_APPLY_FAILED

# Failures of the data, not of the database: the message that causes one is set aside. Anything
# else (a lost connection, a deadlock, a timeout) is raised: the batch is retried after a restart.
DATA_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.DataError,  # class 22: a value PostgreSQL cannot take
    asyncpg.IntegrityConstraintViolationError,  # class 23: NOT NULL, unique, check
    asyncpg.ProgramLimitExceededError,  # class 54: e.g. a key too long for its index
)

# Events whose keys are longer than this are not anyone's records: no seen event for them.
MAX_KEY_PART = 1000


def _finding(code: Code, message: str) -> Finding:
    return Finding(code=code, severity=code.severity(), message=message)


def _nul_in(event: Envelope) -> list[str]:
    """Text fields of the event that PostgreSQL text cannot hold (a NUL character)."""
    fields = {
        "tenant": event.tenant,
        "source": event.source,
        "sourced_id": event.sourced_id,
        "content_hash": event.content_hash,
    }
    return [name for name, value in fields.items() if value and "\x00" in value]


def read_mapped(message: Message) -> tuple[Envelope | None, Finding | None]:
    """A message of the mapped topic: its event, and why it cannot be applied (None: it can)."""
    if message.value is None:
        return None, _finding(
            Code.EMPTY_MESSAGE, "a message without a value (a tombstone), not an event"
        )
    try:
        event = Envelope.from_bytes(message.value)
    except ValidationError as exc:
        return None, _finding(
            Code.ENVELOPE_UNDECODABLE,
            f"not a rostersync event ({exc.error_count()} schema error(s)): kept here, not written",
        )
    missing = missing_parts(event)
    if missing:
        return event, _finding(
            Code.ENVELOPE_INCOMPLETE, f"a {event.kind} event without {', '.join(missing)}"
        )
    if event.kind is EventKind.RECORD and event.operation is Operation.UPSERT:
        lacking = [name for name in ("content_hash", "internal_id") if getattr(event, name) is None]
        if lacking:
            return event, _finding(
                APPLY_FAILED,
                f"an upsert without {', '.join(lacking)} cannot be written"
                " (its row requires them): not written",
            )
    nul = _nul_in(event)
    if nul:
        return event, _finding(
            APPLY_FAILED,
            f"PostgreSQL text cannot hold the NUL character in {', '.join(nul)}: not written",
        )
    return event, None


def seen_version(event: Envelope | None, codes: list[str]) -> Envelope | None:
    """The ``seen`` event a rejected record stands for in its run, if it has a key."""
    if event is None or event.kind is not EventKind.RECORD:
        return None
    if event.entity is None or not event.sourced_id:
        return None
    keys = (event.tenant, event.source, event.sourced_id)
    if any("\x00" in k or len(k) > MAX_KEY_PART for k in keys):
        return None
    return event.model_copy(
        update={
            "operation": Operation.SEEN,
            "payload": {},
            "facts": None,
            "content_hash": None,
            "rejected_codes": codes,
        }
    )


def halves(batches: Batches) -> tuple[Batches, Batches]:
    """Two smaller batches, the first before the second on every partition (order kept)."""
    first: Batches = {}
    second: Batches = {}
    for tp, messages in batches.items():
        cut = len(messages) // 2
        if cut:
            first[tp] = messages[:cut]
        second[tp] = messages[cut:]
    if not first:  # one message per partition: partitions are independent
        parts = list(second.items())
        cut = len(parts) // 2
        first, second = dict(parts[:cut]), dict(parts[cut:])
    return first, second


def reason(exc: Exception) -> Finding:
    """What PostgreSQL refused (its message may quote the value: stored, never logged)."""
    sqlstate = getattr(exc, "sqlstate", None)
    found = failure(APPLY_FAILED, exc)
    prefix = f"PostgreSQL refused it ({sqlstate}) " if sqlstate else "PostgreSQL refused it "
    return found.model_copy(update={"message": clip(prefix + found.message, 800)})


async def isolate(
    conn: asyncpg.Connection,
    batches: Batches,
    apply: Callable[[Batches], Awaitable[T]],
    apply_seen: Callable[[Envelope], Awaitable[object]],
) -> tuple[list[T], list[Message]]:
    """Apply ``batches`` with ``apply`` under savepoints, halving what fails on data until the
    failing message is alone; that one is stored as a rejection (and counts as seen). Returns
    what each applied part returned, and the messages set aside."""
    try:
        async with conn.transaction():
            return [await apply(batches)], []
    except DATA_ERRORS as exc:
        messages = [m for ms in batches.values() for m in ms]
        if len(messages) > 1:
            first, second = halves(batches)
            done, aside = await isolate(conn, first, apply, apply_seen)
            more, more_aside = await isolate(conn, second, apply, apply_seen)
            return done + more, aside + more_aside
        await _set_aside(conn, messages[0], exc, apply_seen)
        return [], messages


async def _set_aside(
    conn: asyncpg.Connection,
    message: Message,
    exc: Exception,
    apply_seen: Callable[[Envelope], Awaitable[object]],
) -> None:
    event = decoded(message)
    found = reason(exc)
    log.warning(
        "writer: %s[%d]@%d cannot be applied (%s %s): kept in rejected_records",
        message.topic,
        message.partition,
        message.offset,
        type(exc).__name__,
        getattr(exc, "sqlstate", ""),
    )
    seen = seen_version(event, [APPLY_FAILED])
    try:
        async with conn.transaction():
            await store_own(conn, [(message, event, [found])])
            if seen is not None:
                await apply_seen(seen)
        return
    except DATA_ERRORS:
        pass  # its key cannot be noted either: keep the message alone
    try:
        async with conn.transaction():
            await store_own(conn, [(message, event, [found])])
        return
    except DATA_ERRORS:
        pass
    # Even its decoded fields are refused: keep where it is and why (the topic holds the rest).
    await conn.execute(OWN_SQL, *own_row(message, None, [found], with_event=False))
