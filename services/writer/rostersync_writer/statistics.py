"""Planner statistics brought up to date after a run that changed much of a table.

The fetcher's unchanged lookup (``store/roster.py``) joins a batch of sourcedIds to a roster
table. Planned with the statistics of a table that was empty (a district's first load, before
autovacuum's ANALYZE gets to it), it ran as a sequential scan per batch: 18 s a batch of 3,000
enrollments against 150k rows, the unchanged re-sync after a first load 41 s instead of 13 s
(benchmarks.pipeline 30000). So when a run completes, the writer analyzes each roster table
changed by more than a fifth of its rows since it was last analyzed, as autovacuum would, but
before the next run reads it. ANALYZE samples (30,000 rows at most): a fraction of a second.
"""

from __future__ import annotations

import logging

import asyncpg
from rostersync_libs.store.tables import LINK_TABLES, ROSTER_TABLES

log = logging.getLogger(__name__)

TABLES = [*ROSTER_TABLES.values(), *LINK_TABLES]
# autovacuum's default analyze threshold is 50 rows + 10%; a fifth, and at least 1,000 rows,
# leaves small deltas to autovacuum.
SHARE = 0.2
AT_LEAST = 1000

STALE_SQL = (
    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
    " AND relname = ANY($1::text[]) AND n_mod_since_analyze > greatest($2, $3 * n_live_tup)"
)


async def refresh_statistics(pool: asyncpg.Pool) -> list[str]:
    """ANALYZE the roster tables whose statistics a completed run made stale; their names.
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
