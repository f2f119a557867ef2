"""Scaling out: two instances of every service in the same consumer groups, on topics with
several partitions, load a district exactly as one instance of each does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import SERVICES, start_service, stop_all
from rostersync_cli.replay import compare
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.conftest import isolated_settings
from tests.e2e import cli_settings
from tests.pipeline import wait_for_run
from tests.servers import Servers

pytestmark = pytest.mark.integration

ROSTER = ["orgs", "academic_sessions", "courses", "classes", "class_terms", "users", "user_orgs",
          "guardian_links", "enrollments", "demographics", "findings", "rejected_records"]  # fmt: skip
# Where a record sat in Kafka and the event around it (ids, times) differ with the partitioning.
RUN_COLUMNS = frozenset({"first_seen_run", "last_seen_run", "run_id", "finding_id", "event",
                         "source_topic", "source_partition", "source_offset", "source_index"})  # fmt: skip


async def load(settings: ServiceSettings, tenants: Path, instances: int) -> None:
    cli = cli_settings(settings, tenants)
    await ensure_topics(settings)
    procs: list[subprocess.Popen[bytes]] = [
        start_service(name, cli) for name in SERVICES for _ in range(instances)
    ]
    try:
        command = await request_sync(cli, "d1", None)
        await wait_for_run(settings, "d1", command.run_id, timeout=240)
    finally:
        stop_all(procs)


async def test_two_instances_of_each_service_load_exactly_what_one_of_each_loads(
    servers: Servers, settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=600))
    with (tmp_path / "bundle" / "users.csv").open("a") as users:  # one record to reject
        users.write("bad-1,,,true,org-hs1,principal,x,,X,,,,,,,,,\n")
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
    wide = settings.model_copy(update={"topic_partitions": 4})
    await load(wide, tenants, instances=2)
    async with isolated_settings(servers) as single:
        await load(single.model_copy(update={"topic_partitions": 1}), tenants, instances=1)
        differences = await compare(db, settings.db_schema, single.db_schema, ROSTER, RUN_COLUMNS)
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}
    assert await db.fetchval("SELECT count(*) FROM enrollments") > 1000
    assert await db.fetchval("SELECT count(*) FROM rejected_records") == 1
    groups = await db.fetch("SELECT DISTINCT partition FROM run_markers")
    assert len(groups) == 4  # the run completed on every partition of the mapped topic
