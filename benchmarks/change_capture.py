"""What capturing changes costs PostgreSQL: the writer's upsert of N users with and without the
change feed's triggers, and numbering them (moving them to change_log), alternately.

The writer's Python does no more work for the feed (the triggers of migration 0017 write the
changes), so its throughput benchmark's CPU seconds cannot show the cost; this times the SQL
alone on a fresh schema: the users' upsert statement (``tables.py``) into an empty table (N
inserts), then again with every row's content changed (N updates), each in a transaction rolled
back, with the feed off (no run named: the triggers return at once) and on.

    .venv/bin/python -m benchmarks.change_capture [N]     # default 100,000
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import asyncpg
from rostersync_libs.events import EntityType
from rostersync_libs.ids import new_run_id
from rostersync_libs.store.migrate import migrate
from rostersync_writer.changes import attribute, number_runs
from rostersync_writer.tables import TABLES

from benchmarks.csv_memory import cleanup, settings_for

STAGE = """
CREATE TEMP TABLE stage_users (LIKE users INCLUDING DEFAULTS) ON COMMIT DROP;
INSERT INTO stage_users (tenant_id, sourced_id, internal_id, source, enabled, role, username,
    given_name, family_name, grades, content_hash, first_seen_run, last_seen_run, payload)
SELECT 'bench', 'u-' || n, md5('u' || n)::uuid, 'csv', true, 'student', 'user' || n,
    $2 || n, 'Family' || (n % 997), '{09}', $2 || md5(n::text), $1, $1,
    jsonb_build_object('givenName', $2 || n)
FROM generate_series(1, $3) AS n
"""


async def timed(conn: asyncpg.Connection, count: int, capture: bool) -> tuple[float, float, float]:
    """Seconds for N inserts, N updates (and, captured, numbering them), rolled back."""
    run = new_run_id()
    upsert = TABLES[EntityType.USER].upsert_sql("stage_users")
    tx = conn.transaction()
    await tx.start()
    try:
        if capture:
            await attribute(conn, run)
        await conn.execute(STAGE.replace("$1", f"'{run}'").replace("$2", "'A'").replace("$3", str(count)))  # fmt: skip
        began = time.perf_counter()
        await conn.execute(upsert)
        inserted = time.perf_counter() - began
        await conn.execute("DROP TABLE stage_users")
        await conn.execute(STAGE.replace("$1", f"'{run}'").replace("$2", "'B'").replace("$3", str(count)))  # fmt: skip
        began = time.perf_counter()
        await conn.execute(upsert)
        updated = time.perf_counter() - began
        began = time.perf_counter()
        if capture:
            await conn.execute(
                "INSERT INTO sync_runs (tenant_id, run_id, source) VALUES ('bench', $1, 'csv')", run
            )
            assert await number_runs(conn, [("bench", run)]) == 2 * count
        numbered = time.perf_counter() - began
    finally:
        await tx.rollback()
    return inserted, updated, numbered


async def main(count: int) -> None:
    settings = settings_for(f"cap_{uuid.uuid4().hex[:6]}")
    conn = await asyncpg.connect(settings.database_url.get_secret_value(),
                                 server_settings={"search_path": settings.db_schema})  # fmt: skip
    try:
        await conn.execute(f'CREATE SCHEMA "{settings.db_schema}"')
        await migrate(conn)
        found: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for _ in range(3):
            for capture in (False, True):
                found[capture].append(await timed(conn, count, capture))
        for capture, runs in found.items():
            best = [min(r[i] for r in runs) for i in range(3)]
            print(f"feed {'on ' if capture else 'off'}: {count:,} inserts {best[0]:.2f} s"
                  f" ({best[0] / count * 1e6:.1f} µs/row), {count:,} updates {best[1]:.2f} s"
                  f" ({best[1] / count * 1e6:.1f} µs/row), numbering {best[2]:.2f} s"
                  f" ({best[2] / (2 * count) * 1e6:.1f} µs/change)  [best of 3]")  # fmt: skip
    finally:
        await conn.close()
        await cleanup(settings)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
