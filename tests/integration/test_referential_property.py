"""Property: whatever records a run rejects, no active row points at a missing, rejected or
archived row afterwards, and the corrected bundle lands everything (real Kafka and PostgreSQL)."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.settings import ServiceSettings
from rostersync_writer.dangling import count_dangling

from tests.bundles import write_tenants
from tests.e2e import sync

pytestmark = pytest.mark.integration

# A change to one column that makes the validator reject the row under both profiles.
BREAKS = {
    "orgs.csv": ("type", "campus"),
    "academicSessions.csv": ("type", "quarter"),
    "courses.csv": ("title", ""),
    "classes.csv": ("title", ""),
    "users.csv": ("role", "principal"),
    "enrollments.csv": ("role", "principal"),
    "demographics.csv": ("sex", "robot"),
}
TABLES = ("orgs", "academic_sessions", "courses", "classes", "users", "enrollments", "demographics")
FILES = ("orgs.csv", "academicSessions.csv", "courses.csv", "classes.csv", "users.csv",
         "enrollments.csv", "demographics.csv")  # fmt: skip

breaks = st.lists(
    st.tuples(st.sampled_from(sorted(BREAKS)), st.integers(min_value=0, max_value=60)),
    min_size=1,
    max_size=8,
)


def break_rows(clean: Path, broken: Path, chosen: list[tuple[str, int]]) -> None:
    shutil.copytree(clean, broken)
    for file_name in {f for f, _ in chosen}:
        with (clean / file_name).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            continue
        column, bad = BREAKS[file_name]
        for chosen_file, index in chosen:
            if chosen_file == file_name:
                rows[index % len(rows)][column] = bad
        with (broken / file_name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


async def active_counts(db: asyncpg.Connection, tenant: str) -> dict[str, int]:
    return {
        t: await db.fetchval(
            f"SELECT count(*) FROM {t} WHERE tenant_id = $1 AND archived_at IS NULL", tenant
        )
        for t in TABLES
    }


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chosen=breaks, seed=st.integers(min_value=1, max_value=1000), strict=st.booleans())
async def test_no_active_row_points_at_a_rejected_record(
    settings_: ServiceSettings,
    db: asyncpg.Connection,
    chosen: list[tuple[str, int]],
    seed: int,
    strict: bool,
) -> None:
    tenant = f"p{uuid4().hex[:8]}"
    validation = "strict" if strict else "lenient"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root / "clean", DistrictShape(students=12, seed=seed))
        break_rows(root / "clean", root / "broken", chosen)
        broken = write_tenants(root / "b.toml", tenant, root / "broken", validation)
        run_id = await sync(settings_, broken, tenant)

        assert await count_dangling(db, tenant) == {}
        refused = await db.fetchval(
            "SELECT count(*) FROM rejected_records WHERE tenant_id = $1 AND run_id = $2",
            tenant,
            run_id,
        )
        assert refused > 0  # every break rejects at least the broken row
        # Nothing active is a record the run rejected.
        for table, entity in (("users", "users"), ("enrollments", "enrollments")):
            assert not await db.fetchval(
                f"SELECT count(*) FROM {table} t JOIN run_rejections r ON r.tenant_id = t.tenant_id"
                " AND r.run_id = $2 AND r.entity = $3 AND r.sourced_id = t.sourced_id"
                " WHERE t.tenant_id = $1 AND t.archived_at IS NULL",
                tenant,
                run_id,
                entity,
            )

        clean = write_tenants(root / "c.toml", tenant, root / "clean", validation)
        await sync(settings_, clean, tenant)
        assert await count_dangling(db, tenant) == {}
        landed = await active_counts(db, tenant)
        for table, file_name in zip(TABLES, FILES, strict=True):
            with (root / "clean" / file_name).open() as handle:
                assert landed[table] == sum(1 for _ in handle) - 1, table


@pytest.fixture
def settings_(settings: ServiceSettings) -> ServiceSettings:
    """The test's settings under another name (hypothesis' ``settings`` decorator takes it)."""
    return settings
