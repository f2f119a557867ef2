"""Poison never loops: a message or a record the writer cannot apply is kept as a rejection, and
it goes on.

Two lines of defence, both ending in ``rejected_records`` (stage ``writer``, with the reason as a
finding, tenant and run when known, the Kafka position and the record's index in its batch):

- **Before the transaction** (``read_mapped``): a message on the mapped topic that is not an event
  (``empty_message``; ``envelope_undecodable``, with msgspec's word for what is wrong and where,
  e.g. a required field missing at ``$.records[3]``), or whose tenant is not the tenant of its
  Kafka key (``envelope_tenant_mismatch``, as the stages judge it: it was sealed with one
  tenant's data key and claims another tenant) is rejected whole. Then each record of a
  batch is judged on its own: one that cannot be written as it is (``writer_apply_failed``: an
  upsert without ``content_hash`` or ``internal_id``, a NUL character in a key) is rejected
  alone, at its index, and the rest of its batch applies. Caught here, not by the database,
  because such a record could be parked and only fail when released by another one.
- **In the transaction** (``isolate``): a batch whose transaction fails on data (PostgreSQL's data
  exception and integrity violation classes, and program limits such as an index row too large)
  is applied again, in a new transaction, on units (a message, or one record of a batch message:
  :class:`Unit`), halved under savepoints until the failing unit is alone (each half applied as if
  Kafka had returned a smaller batch: per-partition order is kept, and a batch message's records
  stay in their order). That unit is stored with the database's reason (``writer_apply_failed``);
  everything else lands, and the positions advance in the same transaction as the rows.

A rejected record that has a key counts as seen, like a record a stage rejected: it goes through
the batch as a ``seen`` record carrying its code, so a bulk run's sweep keeps its row and what
points at it is refused with the chain named. Connection errors are not data: they still stop the
writer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

import asyncpg
import msgspec
from aiokafka import ConsumerRecord, TopicPartition
from rostersync_libs import events
from rostersync_libs.events import Operation, RecordBatch, RecordEvent, UnchangedList
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, clip
from rostersync_libs.stage_reading import read

from rostersync_writer.rejections import OWN_SQL, Stored, decoded, own_row, store_own

log = logging.getLogger(__name__)

Message: TypeAlias = ConsumerRecord[bytes, bytes]
T = TypeVar("T")
U = TypeVar("U")

APPLY_FAILED = Code.WRITER_APPLY_FAILED

# Failures of the data, not of the database: the unit that causes one is set aside. Anything
# else (a lost connection, a deadlock, a timeout) is raised: the batch is retried after a restart.
DATA_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.DataError,  # class 22: a value PostgreSQL cannot take
    asyncpg.IntegrityConstraintViolationError,  # class 23: NOT NULL, unique, check
    asyncpg.ProgramLimitExceededError,  # class 54: e.g. a key too long for its index
)

# Records whose keys are longer than this are not anyone's records: no seen record for them.
MAX_KEY_PART = 1000


def _finding(code: Code, message: str) -> Finding:
    return Finding(code=code, severity=code.severity(), message=message)


@dataclass(slots=True)
class Judged:
    """One message of the mapped topic, read and judged before the transaction."""

    event: events.Event | None  # None: not an event (``problem`` says why)
    problem: Finding | None = None  # the whole message cannot be applied
    # A batch's records with their run's context, in order: a record's index is its place.
    records: list[RecordEvent] = field(default_factory=list)
    # Records of the batch that cannot be written, by index (most batches: none).
    problems: dict[int, Finding] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unit:
    """What poison isolation sets aside at most: a message, or one record of a batch message."""

    message: Message
    index: int  # the record's place in its batch (0: the whole message)
    judged: Judged | None  # a mapped message's reading; None: a message of another topic


Parts: TypeAlias = dict[TopicPartition, list[Unit]]


def _unwritable(batch: RecordBatch, records: list[RecordEvent]) -> dict[int, Finding]:
    """The records of the batch that cannot be written as they are, by index, with why."""
    problems: dict[int, Finding] = {}
    # The run's context is the batch's: a NUL there is in every record's key.
    context_nul = [name for name in ("tenant", "source") if "\x00" in getattr(batch, name)]
    upsert = Operation.UPSERT
    for i, r in enumerate(records):
        if r.operation is upsert and (r.content_hash is None or r.internal_id is None):
            lacking = [n for n in ("content_hash", "internal_id") if getattr(r, n) is None]
            problems[i] = _finding(
                APPLY_FAILED,
                f"an upsert without {', '.join(lacking)} cannot be written"
                " (its row requires them): not written",
            )
        elif context_nul or "\x00" in r.sourced_id or "\x00" in (r.content_hash or ""):
            nul = context_nul + [
                name
                for name in ("sourced_id", "content_hash")
                if "\x00" in (getattr(r, name) or "")
            ]
            problems[i] = _finding(
                APPLY_FAILED,
                f"PostgreSQL text cannot hold the NUL character in {', '.join(nul)}: not written",
            )
    return problems


def read_mapped(message: Message) -> Judged:
    """A message of the mapped topic: its event, and what of it cannot be applied. Whether it is
    an event at all is judged as the middle stages judge it (``stage_reading.read``)."""
    event = read(message.value, message.key)
    if isinstance(event, Finding):
        return Judged(None, event)
    if isinstance(event, RecordBatch):
        records = events.records_of(event)
        return Judged(event, records=records, problems=_unwritable(event, records))
    return Judged(event)


def seen_version(record: RecordEvent | None, codes: list[str]) -> RecordEvent | None:
    """The ``seen`` record a rejected record stands for in its run, if it has a key."""
    if record is None:
        return None
    keys = (record.tenant, record.source, record.sourced_id)
    if not record.sourced_id or any("\x00" in k or len(k) > MAX_KEY_PART for k in keys):
        return None
    return msgspec.structs.replace(
        record,
        operation=Operation.SEEN,
        payload={},
        facts=None,
        content_hash=None,
        rejected_codes=codes,
    )


def units_of(mapped: str, batches: dict[TopicPartition, list[Message]]) -> Parts:
    """The batch as units, each partition's in order: every record of a batch message on the
    ``mapped`` topic is its own unit, any other message is one."""
    parts: Parts = {}
    for tp, messages in batches.items():
        units: list[Unit] = []
        for message in messages:
            if tp.topic != mapped:
                units.append(Unit(message, 0, None))
                continue
            judged = read_mapped(message)
            if isinstance(judged.event, RecordBatch) and judged.records:
                units.extend(Unit(message, i, judged) for i in range(len(judged.records)))
            else:
                units.append(Unit(message, 0, judged))
        parts[tp] = units
    return parts


def halves(
    parts: dict[TopicPartition, list[U]],
) -> tuple[dict[TopicPartition, list[U]], dict[TopicPartition, list[U]]]:
    """Two smaller batches, the first before the second on every partition (order kept)."""
    first: dict[TopicPartition, list[U]] = {}
    second: dict[TopicPartition, list[U]] = {}
    for tp, units in parts.items():
        cut = len(units) // 2
        if cut:
            first[tp] = units[:cut]
        second[tp] = units[cut:]
    if not first:  # one unit per partition: partitions are independent
        pairs = list(second.items())
        cut = len(pairs) // 2
        first, second = dict(pairs[:cut]), dict(pairs[cut:])
    return first, second


def reason(exc: Exception) -> Finding:
    """What PostgreSQL refused (its message may quote the value: stored, never logged)."""
    sqlstate = getattr(exc, "sqlstate", None)
    prefix = f"PostgreSQL refused it ({sqlstate}) " if sqlstate else "PostgreSQL refused it "
    return _finding(APPLY_FAILED, clip(f"{prefix}{type(exc).__name__}: {exc}", 800))


async def isolate(
    conn: asyncpg.Connection,
    parts: Parts,
    apply: Callable[[Parts], Awaitable[T]],
    apply_seen: Callable[[RecordEvent], Awaitable[object]],
) -> tuple[list[T], list[Unit]]:
    """Apply ``parts`` with ``apply`` under savepoints, halving what fails on data until the
    failing unit is alone; that one is stored as a rejection (and a record counts as seen).
    Returns what each applied part returned, and the units set aside."""
    try:
        async with conn.transaction():
            return [await apply(parts)], []
    except DATA_ERRORS as exc:
        units = [u for us in parts.values() for u in us]
        if len(units) > 1:
            first, second = halves(parts)
            done, aside = await isolate(conn, first, apply, apply_seen)
            more, more_aside = await isolate(conn, second, apply, apply_seen)
            return done + more, aside + more_aside
        await _set_aside(conn, units[0], exc, apply_seen)
        return [], units


def held_by(unit: Unit) -> Stored | None:
    """What the unit holds, as its rejection keeps it: its record, or its event."""
    judged = unit.judged
    if judged is None:  # a dead letter holds a record (any other side message: nothing)
        return decoded(unit.message)
    if isinstance(judged.event, RecordBatch) and judged.records:
        return judged.records[unit.index]
    if isinstance(judged.event, UnchangedList | events.RunEnd):
        return judged.event
    return None


async def _set_aside(
    conn: asyncpg.Connection,
    unit: Unit,
    exc: Exception,
    apply_seen: Callable[[RecordEvent], Awaitable[object]],
) -> None:
    message, index = unit.message, unit.index
    held = held_by(unit)
    found = reason(exc)
    log.warning(
        "writer: %s[%d]@%d#%d cannot be applied (%s %s): kept in rejected_records",
        message.topic,
        message.partition,
        message.offset,
        index,
        type(exc).__name__,
        getattr(exc, "sqlstate", ""),
    )
    seen = seen_version(held, [APPLY_FAILED]) if isinstance(held, RecordEvent) else None
    try:
        async with conn.transaction():
            await store_own(conn, [(message, index, held, [found])])
            if seen is not None:
                await apply_seen(seen)
        return
    except DATA_ERRORS:
        pass  # its key cannot be noted either: keep the record alone
    try:
        async with conn.transaction():
            await store_own(conn, [(message, index, held, [found])])
        return
    except DATA_ERRORS:
        pass
    # Even its decoded fields are refused: keep where it is and why (the topic holds the rest).
    await conn.execute(OWN_SQL, *own_row(message, index, None, [found], with_event=False))
