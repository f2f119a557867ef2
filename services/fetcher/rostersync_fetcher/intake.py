"""Taking commands off the command topic: each runs as a task, one at a time per tenant.

Polling goes on while a sync runs (a million-student sync outlasts Kafka's poll interval, and a
consumer that stops polling is dropped from its group), and a command is committed once taken: a
fetcher that stops mid-run does not publish it twice; the run's lease (leases.py) lapses and
another fetcher ends it ``failed`` and asks for it again. On stop, runs still going after
``grace`` seconds are cancelled (a stop must not wait for a million-student sync).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError
from rostersync_libs.commands import COMMAND, CancelRun, SyncRequested
from rostersync_libs.sealing import UNREADABLE

log = logging.getLogger(__name__)

Handler = Callable[[SyncRequested], Awaitable[None]]
Canceller = Callable[[CancelRun], Awaitable[None]]


class CommandIntake:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handle: Handler,
        grace: float = 5.0,
        *,
        cancel: Canceller | None = None,
    ) -> None:
        self._consumer = consumer
        self._handle = handle
        self._grace = grace
        self._cancel = cancel
        self._tenant_locks: dict[str, asyncio.Lock] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; then waits ``grace`` seconds for the commands still running."""
        running: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    await self._consumer.commit({tp: messages[-1].offset + 1})
                    for message in messages:
                        if message.value is UNREADABLE:
                            continue  # not sealed with its tenant's key, or a purged tenant's
                        command = _command(message.value or b"")
                        if isinstance(command, CancelRun):
                            # At once, not behind the tenant's lock: the run to stop holds it.
                            if self._cancel is not None:
                                await self._cancel(command)
                            continue
                        if command is None:
                            continue
                        task = asyncio.create_task(self._take(command))
                        running.add(task)
                        task.add_done_callback(running.discard)
        finally:
            await finish(running, self._grace)

    async def _take(self, command: SyncRequested) -> None:
        async with self._tenant_locks.setdefault(command.tenant, asyncio.Lock()):
            try:
                await self._handle(command)
            except Exception:  # one tenant's failure must not stop the others
                log.exception("tenant %s: command failed", command.tenant)


async def finish(tasks: set[asyncio.Task[None]] | list[asyncio.Task[None]], grace: float) -> None:
    """Let these tasks end for ``grace`` seconds, then cancel what is left, and wait for it."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _command(raw: bytes) -> SyncRequested | CancelRun | None:
    """The fetcher's command in a message; None for one meant for another service or malformed."""
    try:
        command = COMMAND.validate_json(raw)
    except ValidationError as exc:
        log.error("ignoring a malformed command (%d schema errors)", exc.error_count())
        return None
    return command if isinstance(command, SyncRequested | CancelRun) else None
