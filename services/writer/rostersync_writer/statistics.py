"""Planner statistics brought up to date after a run that changed much of a table.

The fetcher's unchanged lookup (``store/roster.py``) joins a batch of sourcedIds to a roster
table. Planned with the statistics of a table that was empty (a district's first load, before
autovacuum's ANALYZE gets to it), it ran as a sequential scan per batch: 18 s a batch of 3,000
enrollments against 150k rows, the unchanged re-sync after a first load 41 s instead of 13 s
(benchmarks.pipeline 30000). So when a run completes, the writer analyzes each roster table whose
row count differs from the planner's belief (``pg_class.reltuples``, -1 before any ANALYZE) by
more than a fifth, as autovacuum would later, but before the next run reads it. A run that only
updates rows (a re-sync marking them seen) leaves the count, so no ANALYZE. ANALYZE samples
(30,000 rows at most): a fraction of a second.
"""

from __future__ import annotations

import logging

import asyncpg
from rostersync_libs.store.tables import LINK_TABLES, ROSTER_TABLES

log = logging.getLogger(__name__)

# The change feed's log too: the API's feed and history read it by tenant and number or record.
TABLES = [*ROSTER_TABLES.values(), *LINK_TABLES, "change_log"]
# A fifth, and at least 1,000 rows: small deltas are left to autovacuum.
SHARE = 0.2
AT_LEAST = 1000

STALE_SQL = (
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])"
    " AND abs(s.n_live_tup - greatest(c.reltuples, 0))"
    " > greatest($2, $3 * greatest(c.reltuples, 0))"
)


async def refresh_statistics(pool: asyncpg.Pool) -> list[str]:
    """ANALYZE the roster tables (and the change log) whose statistics a completed run made stale; their names.
    Best effort: statistics are an optimisation, a failure is logged and left to autovacuum."""
    try:
        async with pool.acquire() as conn:
            stale = [r["relname"] for r in await conn.fetch(STALE_SQL, TABLES, AT_LEAST, SHARE)]
            for table in stale:
                await conn.execute(f'ANALYZE "{table}"')
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.warning("statistics not refreshed (%s): left to autovacuum", type(exc).__name__)
        return []
    return stale
