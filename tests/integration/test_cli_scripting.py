"""Scripts drive the CLI: one JSON document per command (``--json``), ``sync --bundle`` for one
given bundle, ``sync --full``, and output piped into ``head`` ending quietly."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from uuid import UUID

import asyncpg
import orjson
import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.run_reports.status import EXIT_OK, EXIT_REFUSED
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.cli_process import cli
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration


async def test_json_documents_a_given_bundle_and_a_quiet_broken_pipe(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "nightly", DistrictShape(students=20))
    generate(tmp_path / "upload", DistrictShape(students=30))
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "nightly")
    async with running_pipeline(settings, tenants):
        synced = await cli(
            settings, tenants, "sync", "d1", "--bundle", str(tmp_path / "upload"), "--wait",
            "--json",
        )  # fmt: skip
        assert synced.code == EXIT_OK, synced
        document = orjson.loads(synced.out)  # the whole output is one document
        run_id = UUID(document["run_id"])
        assert (document["tenant"], document["status"], document["exit_code"]) == (
            "d1", "completed", EXIT_OK,
        )  # fmt: skip
        users_file = next(f for f in document["files"] if f["file"] == "users.csv")
        assert users_file["rows"] > 30  # the uploaded bundle's 30 students, not the nightly's 20
        assert {r["table"] for r in document["rows"]} >= {"users", "enrollments"}

        report = await cli(settings, tenants, "report", "d1", str(run_id), "--json")
        assert orjson.loads(report.out) == document
        runs = orjson.loads((await cli(settings, tenants, "runs", "--json")).out)
        assert [r["run_id"] for r in runs["runs"]] == [str(run_id)]
        assert runs["runs"][0]["status"] == "completed"
        holds = orjson.loads((await cli(settings, tenants, "holds", "--all", "--json")).out)
        assert [(o["run_id"], o["status"]) for o in holds["outcomes"]] == [(str(run_id), "applied")]

        requested = await cli(settings, tenants, "sync", "d1", "--full", "--json")
        assert orjson.loads(requested.out)["status"] == "requested"

        missing = await cli(settings, tenants, "sync", "d1", "--bundle", str(tmp_path / "none"))
        assert missing.code == EXIT_REFUSED
        assert "no bundle at" in missing.err
    assert await db.fetchval("SELECT count(*) FROM users WHERE tenant_id = 'd1'") > 30

    # `rostersync runs | head -1`: the reader leaves early; no Broken pipe message, exit 0.
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "ROSTERSYNC_DB_SCHEMA": settings.db_schema,
        "ROSTERSYNC_TOPIC_PREFIX": settings.topic_prefix,
        "ROSTERSYNC_TENANTS_FILE": str(tenants),
    }
    # Enough rows that the table outgrows a pipe's buffer (64 KiB) after head has gone.
    await db.executemany(
        "INSERT INTO sync_runs (tenant_id, run_id, source) VALUES ('d1', $1, 'csv')",
        [(UUID(int=i + 1),) for i in range(1500)],
    )
    pipeline = await asyncio.create_subprocess_shell(
        f"{sys.executable} -m rostersync_cli runs --limit 1500 | head -1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(pipeline.communicate(), 60)
    assert out.decode().startswith("run")
    assert err.decode() == ""
