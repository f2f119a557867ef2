"""The thin path through all four services, on a real Kafka broker and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.processes import running_services
from rostersync_cli.settings import SAMPLE_TENANTS
from rostersync_libs.events import EntityType
from rostersync_libs.ids import internal_id
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_bundle, write_tenants
from tests.e2e import cli_settings
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration

ORGS = [
    {"sourcedId": "d1", "name": "District One", "type": "district"},
    {"sourcedId": "s1", "name": "School One", "type": "school", "parentSourcedId": "d1"},
]
USERS = [
    {"sourcedId": "t1", "enabledUser": "true", "orgSourcedIds": "s1", "role": "teacher",
     "username": "tina", "givenName": "Tina", "familyName": "Teach", "email": "t@x.example"},
    {"sourcedId": "st1", "enabledUser": "true", "orgSourcedIds": "s1,d1", "role": "student",
     "username": "sam", "givenName": "Sam", "familyName": "Study", "grades": "09",
     "agentSourcedIds": "p1", "password": "secret!"},
    {"sourcedId": "p1", "enabledUser": "false", "orgSourcedIds": "s1", "role": "parent",
     "username": "pat", "givenName": "Pat", "familyName": "Study", "agentSourcedIds": "st1"},
    # row 5: not a 1.1 role, and no familyName
    {"sourcedId": "bad1", "enabledUser": "true", "orgSourcedIds": "s1", "role": "principal",
     "username": "gary", "givenName": "Gary", "familyName": ""},
]  # fmt: skip


async def sync_now(settings: ServiceSettings, tenants: Path, tenant: str) -> Any:
    """Request a sync from the running pipeline and wait for it."""
    command = await request_sync(cli_settings(settings, tenants), tenant, None)
    await wait_for_run(settings, tenant, command.run_id)
    return command.run_id


async def test_bundle_lands_in_postgres_through_all_four_services(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "bundle", {"orgs": ORGS, "users": USERS})
    tenants = write_tenants(tmp_path / "tenants.toml", "district-a", bundle)
    async with running_pipeline(settings, tenants):
        run_id = await sync_now(settings, tenants, "district-a")

    orgs = await db.fetch("SELECT * FROM orgs ORDER BY sourced_id")
    assert [(o["sourced_id"], o["name"], o["org_type"]) for o in orgs] == [
        ("d1", "District One", "district"),
        ("s1", "School One", "school"),
    ]
    assert orgs[1]["parent_internal_id"] == internal_id("district-a", EntityType.ORG, "d1")
    assert {o["tenant_id"] for o in orgs} == {"district-a"}

    users = {u["sourced_id"]: u for u in await db.fetch("SELECT * FROM users")}
    assert set(users) == {"t1", "st1", "p1"}
    assert users["st1"]["internal_id"] == internal_id("district-a", EntityType.USER, "st1")
    assert users["st1"]["grades"] == ["09"]
    assert users["p1"]["enabled"] is False
    assert users["t1"]["email"] == "t@x.example"
    assert "password" not in users["st1"]["payload"]
    assert all(u["first_seen_run"] == run_id for u in users.values())

    memberships = await db.fetch("SELECT user_internal_id, org_internal_id, role FROM user_orgs")
    org_id = {o["sourced_id"]: o["internal_id"] for o in orgs}
    user_of = {u["internal_id"]: sid for sid, u in users.items()}
    org_of = {v: k for k, v in org_id.items()}
    assert sorted((user_of[m[0]], org_of[m[1]], m[2]) for m in memberships) == [
        ("p1", "s1", "parent"),
        ("st1", "d1", "student"),
        ("st1", "s1", "student"),
        ("t1", "s1", "teacher"),
    ]

    rejected = await db.fetch("SELECT * FROM rejected_records")
    assert len(rejected) == 1
    assert (rejected[0]["sourced_id"], rejected[0]["origin_file"], rejected[0]["origin_row"]) == (
        "bad1",
        "users.csv",
        5,
    )
    import orjson

    findings = {(f["code"], f["column"]) for f in orjson.loads(rejected[0]["findings"])}
    assert findings == {("missing_required_data", "familyName"), ("invalid_enumeration", "role")}

    run = await db.fetchrow("SELECT * FROM sync_runs WHERE run_id = $1", run_id)
    assert run["status"] == "completed"
    assert orjson.loads(run["published_counts"]) == {"orgs.csv": 2, "users.csv": 4}


async def test_resync_is_idempotent_deltas_archive_and_tenants_stay_apart(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bulk = write_bundle(tmp_path / "bulk", {"orgs": ORGS, "users": USERS[:3]})
    delta = write_bundle(
        tmp_path / "delta",
        {"users": [
            {**USERS[1], "status": "tobedeleted", "dateLastModified": "2026-11-20T10:00:00Z"},
            {**USERS[0], "status": "active", "dateLastModified": "2026-11-20T10:00:00Z",
             "givenName": "Christina"},
        ]},
        mode="delta",
    )  # fmt: skip
    tenants_a = write_tenants(tmp_path / "a.toml", "district-a", bulk)
    tenants_b = write_tenants(tmp_path / "b.toml", "district-b", bulk)
    tenants_delta = write_tenants(tmp_path / "delta.toml", "district-a", delta)
    async with running_pipeline(settings, tenants_a):
        await sync_now(settings, tenants_a, "district-a")
        await sync_now(settings, tenants_a, "district-a")  # the same snapshot again
    async with running_pipeline(settings, tenants_b):
        await sync_now(settings, tenants_b, "district-b")
    async with running_pipeline(settings, tenants_delta):
        await sync_now(settings, tenants_delta, "district-a")

    rows = await db.fetch(
        "SELECT tenant_id, sourced_id, given_name, archived_at IS NOT NULL AS archived FROM users"
        " ORDER BY tenant_id, sourced_id"
    )
    assert [tuple(r) for r in rows] == [
        ("district-a", "p1", "Pat", False),
        ("district-a", "st1", "Sam", True),
        ("district-a", "t1", "Christina", False),
        ("district-b", "p1", "Pat", False),
        ("district-b", "st1", "Sam", False),
        ("district-b", "t1", "Tina", False),
    ]
    ids = await db.fetch("SELECT tenant_id, internal_id FROM users")
    assert len({r["internal_id"] for r in ids}) == 6  # same sourcedIds, different tenants
    assert await db.fetchval("SELECT count(*) FROM sync_runs WHERE status = 'completed'") == 4


async def test_services_run_as_processes_and_load_the_sample_district(
    settings: ServiceSettings, db: asyncpg.Connection
) -> None:
    cli = cli_settings(settings, SAMPLE_TENANTS)
    with running_services(cli):
        command = await request_sync(cli, "springfield", None)
        await wait_for_run(settings, "springfield", command.run_id, timeout=120)
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM orgs) AS orgs, (SELECT count(*) FROM users) AS users,"
        " (SELECT count(*) FROM enrollments) AS enrollments,"
        " (SELECT count(*) FROM rejected_records) AS rejected"
    )
    folder = SAMPLE_TENANTS.parent / "springfield"

    def data_rows(name: str) -> int:
        return (folder / name).read_text().count("\n") - 1

    # examples/README.md: one user and one enrollment of the sample are deliberately broken
    assert (counts["orgs"], counts["users"], counts["enrollments"], counts["rejected"]) == (
        data_rows("orgs.csv"),
        data_rows("users.csv") - 1,
        data_rows("enrollments.csv") - 1,
        2,
    )
