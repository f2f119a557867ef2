"""The same district via a CSV bundle and via the bundled OneRoster server (1.1 OAuth1, 1.1
OAuth2) ends in the same PostgreSQL rows. More scenarios (1.2, delta over time, faults) are to be
added on the same footing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer

from tests import districts
from tests.bundles import write_bundle
from tests.e2e import cli_settings
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration

TABLES = {
    "orgs": "sourced_id",
    "academic_sessions": "sourced_id",
    "courses": "sourced_id",
    "classes": "sourced_id",
    "users": "sourced_id, given_name, family_name, username",
    "enrollments": "sourced_id, role, is_primary",
    "demographics": "sourced_id",
}


async def snapshot(db: asyncpg.Connection, tenant: str) -> dict[str, set[tuple[Any, ...]]]:
    found = {}
    for table, columns in TABLES.items():
        rows = await db.fetch(
            f"SELECT {columns} FROM {table} WHERE tenant_id = $1 AND archived_at IS NULL", tenant
        )
        found[table] = {tuple(r) for r in rows}
    return found


async def test_csv_and_the_api_over_oauth1_and_oauth2_land_the_same_rows(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rostersync_cli.actions import request_sync

    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    monkeypatch.setenv("ROSTERSYNC_TEST_O2", "s3cret")
    async with OneRosterServer(
        bundle, oauth1={"key": "secret"}, oauth2={"client": "s3cret"}
    ) as server:
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            f'[[tenants]]\nid = "csv"\nname = "C"\n[[tenants.sources]]\nid = "csv"\npath = "{bundle}"\n'
            '[[tenants]]\nid = "o1"\nname = "O1"\n[[tenants.sources]]\nid = "api"\n'
            f'kind = "oneroster-api"\nbase_url = "{server.base_url}"\npage_size = 2\n'
            'auth = { kind = "oauth1", key = "key", secret_env = "ROSTERSYNC_TEST_O1" }\n'
            '[[tenants]]\nid = "o2"\nname = "O2"\n[[tenants.sources]]\nid = "api"\n'
            f'kind = "oneroster-api"\nbase_url = "{server.base_url}"\npage_size = 3\n'
            f'auth = {{ kind = "oauth2", token_url = "{server.token_url}", client_id = "client",'
            ' secret_env = "ROSTERSYNC_TEST_O2",'
            ' scopes = ["https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly",'
            ' "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly"] }\n'
        )
        async with running_pipeline(settings, tenants):
            for tenant in ("csv", "o1", "o2"):
                command = await request_sync(cli_settings(settings, tenants), tenant, None)
                await wait_for_run(settings, tenant, command.run_id, timeout=90)
                errors = await db.fetch(
                    "SELECT code, file, row FROM findings WHERE run_id = $1 AND severity = 'error'",
                    command.run_id,
                )
                assert errors == [], tenant
    csv_rows = await snapshot(db, "csv")
    assert csv_rows["users"]
    assert await snapshot(db, "o1") == csv_rows
    assert await snapshot(db, "o2") == csv_rows


ROLES_BY_NAME = """
SELECT u.sourced_id, o.sourced_id, r.role
FROM user_org_roles r
JOIN users u ON u.internal_id = r.user_internal_id
JOIN orgs o ON o.internal_id = r.org_internal_id
WHERE r.tenant_id = $1
"""


async def test_csv_and_the_1_2_api_over_oauth2_land_the_same_rows(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rostersync_cli.actions import request_sync

    bundle = write_bundle(tmp_path / "b", districts.bundle_1_2(), version="1.2")
    monkeypatch.setenv("ROSTERSYNC_TEST_O2", "s3cret")
    async with OneRosterServer(bundle, oauth2={"client": "s3cret"}) as server:
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            f'[[tenants]]\nid = "csv"\nname = "C"\n[[tenants.sources]]\nid = "csv"\npath = "{bundle}"\n'
            '[[tenants]]\nid = "o2"\nname = "O2"\n[[tenants.sources]]\nid = "api"\n'
            f'kind = "oneroster-api"\nbase_url = "{server.base_url}"\nversion = "1.2"\n'
            f'page_size = 2\nauth = {{ kind = "oauth2", token_url = "{server.token_url}",'
            ' client_id = "client", secret_env = "ROSTERSYNC_TEST_O2",'
            ' scopes = ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly",'
            ' "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly"] }\n'
        )
        async with running_pipeline(settings, tenants):
            for tenant in ("csv", "o2"):
                command = await request_sync(cli_settings(settings, tenants), tenant, None)
                await wait_for_run(settings, tenant, command.run_id, timeout=90)
                errors = await db.fetch(
                    "SELECT code, file, row FROM findings WHERE run_id = $1 AND severity = 'error'",
                    command.run_id,
                )
                assert errors == [], tenant
        assert server.requests_served[server.v1p2_url.removeprefix(server.base_url) + "/users"]
    csv_rows = await snapshot(db, "csv")
    assert csv_rows["users"]
    assert await snapshot(db, "o2") == csv_rows
    csv_roles = {tuple(r) for r in await db.fetch(ROLES_BY_NAME, "csv")}
    assert ("u-t1", "s2", "counselor") in csv_roles
    assert {tuple(r) for r in await db.fetch(ROLES_BY_NAME, "o2")} == csv_roles
    # API role sourcedIds are <user>:<org>:<role> by design; CSV ones are roles.csv's own.
    api_role_ids = await db.fetch(
        "SELECT sourced_id FROM user_roles WHERE tenant_id = 'o2' AND archived_at IS NULL"
    )
    assert "u-t1:s2:counselor" in {r["sourced_id"] for r in api_role_ids}
    profiles = "SELECT sourced_id, username FROM user_profiles WHERE tenant_id = $1"
    assert {tuple(r) for r in await db.fetch(profiles, "o2")} == {
        tuple(r) for r in await db.fetch(profiles, "csv")
    }
