"""What a middle stage's handler is: a verdict per record (:class:`Outcome`), hooks for a run's
files and its end, and what counts as a record it cannot handle (:data:`DATA_ERRORS`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

import asyncpg
import msgspec

from rostersync_libs.events import FileEvent, RecordEvent
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, Severity, clip

log = logging.getLogger(__name__)

# What a handler raises on a record it cannot handle (a value of the wrong type, a combination
# its code does not expect, a value the database refuses): that record is dead-lettered. Anything
# else (Kafka, a connection, a timeout) stops the stage, as before.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    LookupError,
    RecursionError,
    TypeError,
    ValueError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


def failure(code: Code, exc: BaseException) -> Finding:
    """A finding saying what could not be done, with the exception (kept with the dead letter,
    never logged: its text may quote the record)."""
    return Finding(
        code=code,
        severity=Severity.ERROR,
        message=clip(f"{type(exc).__name__}: {exc}", 800),
    )


class Outcome(msgspec.Struct, frozen=True):
    """A handler's verdict on one record: what goes on (None: rejected) and what it found.

    A msgspec struct (one per record: cheap to make); ``findings`` defaults to a new list.
    """

    forward: RecordEvent | None
    findings: list[Finding] = []


class StageHandler:
    """What a stage does with events; override ``handle`` (and the hooks it needs)."""

    async def handle(self, events: list[RecordEvent]) -> list[Outcome]:
        """One outcome per record, in order (the records of every batch of one poll)."""
        raise NotImplementedError

    def on_file(self, event: FileEvent, partition: int) -> list[Finding]:
        """Facts about a file of a run, seen once on every partition before its records."""
        return []

    def on_run_end(self, run_id: UUID) -> None:
        """Every record of the run on one of this instance's partitions has been handled."""


class PerRecord(StageHandler):
    """A handler made of a plain function of one record."""

    def __init__(self, function: Callable[[RecordEvent], Outcome]) -> None:
        self._function = function

    async def handle(self, events: list[RecordEvent]) -> list[Outcome]:
        return [self._function(event) for event in events]


async def handled(
    handler: StageHandler, records: list[RecordEvent], stage: str, code: Code
) -> list[Outcome]:
    """The handler's outcomes; a record it cannot handle is found by halving the records (the
    others are handled as if they had come in smaller batches) and rejected with ``code``."""
    try:
        return await handler.handle(records)
    except DATA_ERRORS as exc:
        if len(records) > 1:
            half = len(records) // 2
            first = await handled(handler, records[:half], stage, code)
            return first + await handled(handler, records[half:], stage, code)
        if not records:
            raise
        log.warning(
            "%s: could not handle a %s record of tenant %s (%s): rejected",
            stage,
            records[0].entity,
            records[0].tenant,
            type(exc).__name__,
        )
        return [Outcome(None, [failure(code, exc)])]
