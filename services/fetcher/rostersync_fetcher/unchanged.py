"""Which records of a run the application already holds, unchanged: they need not travel whole.

A nightly bundle is mostly yesterday's bundle. Sending every record through the validator,
mapper and writer again only to learn that nothing changed costs the whole pipeline; instead the
fetcher looks up each batch's content hashes in the writer's tables and sends the records whose
stored hash matches as one compact ``unchanged`` event per partition (sourcedId → hash). The
writer notes them as seen in the run, so the bulk sweep keeps them (docs/architecture.md,
"Unchanged records").

Only records the application holds *clean* qualify: the writer stores the fetched hash only for
records that passed without findings (the validator gives records with findings another hash), so
a record with a warning travels whole every run and its warning is reported every run. Records
with bundle-level facts (dangling references, duplicates) always travel whole.

The shortcut is used only when the tenant's previous run is settled (completed or held), so the
tables reflect every earlier event; the writer checks the hash again when it applies the list
(a record changed meanwhile is marked for a full resend, never silently kept).
"""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType, Operation, RecordEvent
from rostersync_libs.outages import POSTGRES_OUTAGES, describe
from rostersync_libs.store import roster, runs

log = logging.getLogger(__name__)

DATABASE_AWAY: tuple[type[BaseException], ...] = (*POSTGRES_OUTAGES, OSError)


def eligible(event: RecordEvent) -> bool:
    """A plain upsert with nothing the bundle as a whole says about it."""
    return (
        event.operation is Operation.UPSERT
        and event.facts is None
        and event.content_hash is not None
    )


class UnchangedRecords:
    """Looks up, per batch, the records the writer's tables hold with the same content."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._away = False  # one log line per outage

    async def usable(self, tenant: str, run_id: UUID) -> bool:
        """Whether the tables can be trusted for this run: the tenant's previous run is settled."""
        try:
            return await runs.previous_run_settled(self._pool, tenant, run_id)
        except (asyncpg.PostgresError, OSError) as exc:
            # No tables yet (first run ever) or no database: send everything whole.
            log.info("tenant %s run %s: sending every record (%s)", tenant, run_id, exc)
            return False

    async def held(self, tenant: str, source: str, entity: EntityType) -> set[str]:
        """The sourcedIds of the entity's active rows from this source (a selection's anchors in a
        delta); none when the database is away or has no tables yet."""
        try:
            return await roster.held_ids(self._pool, tenant, source, entity)
        except (*DATABASE_AWAY, asyncpg.PostgresError) as exc:
            log.warning(
                "tenant %s: held %s not read (%s)", tenant, entity.value, type(exc).__name__
            )
            return set()

    async def matching(
        self, tenant: str, source: str, entity: EntityType, events: list[RecordEvent]
    ) -> set[str]:
        """The sourcedIds among ``events`` stored active, from this source, with the same hash."""
        ids: list[str] = []
        hashes: list[str] = []
        for e in events:
            if eligible(e):
                assert e.content_hash is not None  # eligible() says so
                ids.append(e.sourced_id)
                hashes.append(e.content_hash)
        if not ids:
            return set()
        try:
            found = await roster.unchanged_ids(self._pool, tenant, source, entity, ids, hashes)
        except DATABASE_AWAY as exc:
            # The database is away (a restart): these records travel whole, the run goes on.
            if not self._away:
                log.warning("tenant %s: %s: sending records whole", tenant, describe(exc))
            self._away = True
            return set()
        self._away = False
        return found
