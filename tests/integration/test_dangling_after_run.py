"""The dangling count after a run checks what the run changed, found by its captured changes (a real
PostgreSQL with the writer's schema and triggers): a row the run wrote pointing at nothing, and a
row pointing at a row the run archived; a row the run did not touch is the whole check's."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg
import pytest
from rostersync_libs.ids import new_run_id
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_writer import dangling
from rostersync_writer.changes import attribute, number_runs
from rostersync_writer.dangling import count_dangling, count_dangling_after

pytestmark = pytest.mark.integration

T = "d1"


async def enrollment(conn: asyncpg.Connection, run: UUID, class_id: UUID) -> None:
    await conn.execute(
        "INSERT INTO enrollments (tenant_id, sourced_id, internal_id, source, class_internal_id,"
        " content_hash, first_seen_run, last_seen_run, payload)"
        " VALUES ($1, $2, $3, 'csv', $4, 'h', $5, $5, '{}')",
        T, f"e-{uuid4().hex[:6]}", uuid4(), class_id, run,
    )  # fmt: skip


async def a_class(conn: asyncpg.Connection, run: UUID) -> UUID:
    internal_id = uuid4()
    await conn.execute(
        "INSERT INTO classes (tenant_id, sourced_id, internal_id, source, content_hash,"
        " first_seen_run, last_seen_run, payload) VALUES ($1, $2, $3, 'csv', 'h', $4, $4, '{}')",
        T, f"c-{uuid4().hex[:6]}", internal_id, run,
    )  # fmt: skip
    return internal_id


async def test_what_the_run_changed_is_checked_and_only_that(
    settings: ServiceSettings, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await migrate(db)
    earlier, run = new_run_id(), new_run_id()
    async with db.transaction():
        # Before the run, without a run named (no changes captured): a row already dangling.
        await enrollment(db, earlier, uuid4())
        kept, closed = await a_class(db, earlier), await a_class(db, earlier)
        await enrollment(db, earlier, kept)
        await enrollment(db, earlier, closed)
    async with db.transaction():
        await db.execute(
            "INSERT INTO sync_runs (tenant_id, run_id, source) VALUES ($1, $2, 'csv')", T, run
        )
        await attribute(db, run)
        await enrollment(db, run, uuid4())  # the run writes a row pointing at no class
        await enrollment(db, run, kept)  # and a good one
        await number_runs(db, [(T, run)])  # its records' changes are numbered
        # then its end archives a class something still points at (a change still pending)
        await db.execute("UPDATE classes SET archived_at = now() WHERE internal_id = $1", closed)
        after = await count_dangling_after(db, T, run, 0)
        whole = await count_dangling(db, T)
    assert after == {"enrollments.class_internal_id": 2}
    assert whole == {"enrollments.class_internal_id": 3}
    # A run that changed more than the limit gets the whole check.
    monkeypatch.setattr(dangling, "WHOLE_CHECK", 1)
    assert await count_dangling_after(db, T, run, 0) == whole
    # Changes numbered before the completion are not the run's.
    last = await db.fetchval("SELECT last_seq FROM change_sequences WHERE tenant_id = $1", T)
    assert await count_dangling_after(db, T, run, last) == {"enrollments.class_internal_id": 1}
