"""PostgreSQL least privilege: each service runs as its own role with only its grants
(rostersync_libs/db_roles.py) and the pipeline loads a district; what a role was not granted it
cannot do. The writer's role owns the schema and migrates it; no other role has CREATE."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import stop_all
from rostersync_cli.settings import CliSettings
from rostersync_libs.db_roles import grant_statements
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.e2e import cli_settings
from tests.pipeline import start_logged, wait_for_run
from tests.servers import Servers

pytestmark = pytest.mark.integration

SERVICES = ("writer", "fetcher", "validator", "mapper")


def as_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


async def test_each_service_with_only_its_grants_loads_a_district(
    servers: Servers, settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    roles = {service: f"rs_{service}_{tag}" for service in (*SERVICES, "cli")}
    password = uuid.uuid4().hex
    admin = await asyncpg.connect(servers.database_url)
    schema = settings.db_schema
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for role in roles.values():
            await admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        await admin.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{roles["writer"]}"')
        generate(tmp_path / "bundle", DistrictShape(students=60))
        tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path / "bundle")
        # The mapper matches one user to the application's directory: it writes a claim.
        tenants.write_text(
            tenants.read_text().replace("[[tenants.sources]]", "[tenants.matching]\n"
            "user_by_username = true\n\n[[tenants.sources]]")
        )  # fmt: skip
        with (tmp_path / "bundle" / "users.csv").open() as users:
            username = next(csv.DictReader(users))["username"]
        base = cli_settings(settings, tenants)
        await ensure_topics(settings)

        def own(service: str) -> CliSettings:
            url = as_role(servers.database_url, roles[service], password)
            return base.model_copy(update={"database_url": SecretStr(url)})

        def start(service: str) -> None:
            procs.append(start_logged(service, own(service), tmp_path))

        start("writer")  # it owns the schema: it migrates it
        async with asyncio.timeout(60):
            while not await admin.fetchval("SELECT to_regclass($1)", f"{schema}.fetch_leases"):
                await asyncio.sleep(0.2)
        await admin.execute(
            f'INSERT INTO "{schema}".app_directory (tenant_id, entity, app_id, username)'
            " VALUES ('d1', 'users', gen_random_uuid(), $1)",
            username,
        )
        for statement in grant_statements(
            schema, {s: roles[s] for s in ("fetcher", "validator", "mapper", "cli")}
        ):
            await admin.execute(statement)
        for service in ("fetcher", "validator", "mapper"):
            start(service)
        command = await request_sync(own("cli"), "d1", None)
        await wait_for_run(settings, "d1", command.run_id, timeout=120)
        # The CLI audited its command under its own login: the server's word, not the CLI's.
        audited = await db.fetchrow(
            "SELECT action, actor FROM operator_audit WHERE command_id = $1", command.command_id
        )
        assert (audited["action"], audited["actor"]) == ("sync", roles["cli"])
        assert all(p.poll() is None for p in procs)
        assert await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL") > 60
        # Each stage wrote the run's progress under its own role (about once a second).
        async with asyncio.timeout(15):
            while await db.fetchval(
                "SELECT count(DISTINCT stage) FROM run_stage_progress WHERE run_id = $1",
                command.run_id,
            ) < len(("fetcher", "validator", "mapper")):
                await asyncio.sleep(0.3)
        # Nothing degraded quietly for want of a grant (a lease not written, a lookup refused).
        for service in SERVICES:
            logged = (tmp_path / f"{service}.log").read_text()
            assert "InsufficientPrivilege" not in logged, (service, logged[-2000:])
            assert "lease not written" not in logged, service
            assert "progress not written" not in logged, service
        assert await db.fetchval("SELECT count(*) FROM identity_claims") > 0  # the mapper's

        # What a role was not granted, it cannot do.
        for service, statement in [
            ("validator", "INSERT INTO users (tenant_id, sourced_id) VALUES ('x', 'y')"),
            ("validator", "CREATE TABLE stolen (x int)"),
            ("mapper", "DELETE FROM users"),
            ("fetcher", "UPDATE users SET given_name = 'x'"),
            ("cli", "DELETE FROM findings"),
            ("cli", "UPDATE operator_audit SET actor = 'someone else'"),
            ("cli", "DELETE FROM operator_audit"),
            ("fetcher", "INSERT INTO operator_audit SELECT * FROM operator_audit"),
        ]:
            conn = await asyncpg.connect(
                as_role(servers.database_url, roles[service], password),
                server_settings={"search_path": schema},
            )
            try:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            finally:
                await conn.close()
    finally:
        stop_all(procs)
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for role in roles.values():
            with contextlib.suppress(asyncpg.UndefinedObjectError):
                await admin.execute(f'DROP OWNED BY "{role}"')
                await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()
