"""``rostersync runs cancel``: a run is stopped only when the operator audit vouches for the
request (rostersync_libs/audit.py).

A ``CancelRun`` on the command topic is a message; the CLI writes its audit row before sending it.
The fetcher publishing the run looks the command id up in the audit (``settings.control``) and
stops the run only when the row agrees on tenant, run and action; the run's reason then names the
audit's actor (the login PostgreSQL authenticated), never the message's ``requested_by``. Anything
else is refused and logged, without the message's contents.
"""

from __future__ import annotations

import logging

import asyncpg
from rostersync_libs import audit
from rostersync_libs.commands import CancelRun

from rostersync_fetcher.guard import RunGuard

log = logging.getLogger(__name__)


class AuditedCancels:
    """The fetcher's handler of cancel commands (``CommandIntake``'s ``cancel``)."""

    def __init__(self, pool: asyncpg.Pool, control: str, guard: RunGuard) -> None:
        self._pool = pool
        self._control = control
        self._guard = guard

    async def __call__(self, command: CancelRun) -> None:
        try:
            async with self._pool.acquire() as conn:
                entry = await audit.lookup(conn, self._control, command.command_id)
        except (asyncpg.PostgresError, OSError) as exc:
            # Not verified is not done: the operator sees the run still running and asks again.
            log.error("tenant %s run %s: cancel %s not verified (%s): not acted on",
                      command.tenant, command.run_id, command.command_id,
                      type(exc).__name__)  # fmt: skip
            return
        refused = audit.refusal(entry, command)
        if refused is not None or entry is None:
            log.warning("tenant %s run %s: cancel %s refused (%s): not acted on",
                        command.tenant, command.run_id, command.command_id, refused)  # fmt: skip
            return
        if self._guard.cancel(command.run_id, entry.actor):
            log.warning("tenant %s run %s: cancelled by %s",
                        command.tenant, command.run_id, entry.actor)  # fmt: skip
        else:
            log.warning("tenant %s run %s: cancel asked, but this fetcher is not publishing it",
                        command.tenant, command.run_id)  # fmt: skip
