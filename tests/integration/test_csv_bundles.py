"""OneRoster CSV bundles end to end: fetcher → validator → mapper → writer, on real Kafka and
PostgreSQL. Each test asserts exactly which findings appear and which rows reach PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import print_run_report, request_sync
from rostersync_cli.settings import CliSettings
from rostersync_libs.events import EntityType
from rostersync_libs.ids import internal_id
from rostersync_libs.oneroster.columns import USERS_1_1, USERS_1_2_0
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import ids, sync
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration


async def findings(db: asyncpg.Connection, run_id: UUID) -> set[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT code, severity, file, row, column_name FROM findings WHERE run_id = $1", run_id
    )
    return {tuple(r) for r in rows}


def iid(entity: EntityType, sourced_id: str, tenant: str = "d1") -> UUID:
    return internal_id(tenant, entity, sourced_id)


async def test_clean_1_1_bulk_bundle_lands_every_file(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    run_id = await sync(settings, write_tenants(tmp_path / "t.toml", "d1", bundle), "d1")

    assert await findings(db, run_id) == set()
    assert await ids(db, "orgs") == {"d1", "s1", "s2"}
    assert await ids(db, "academic_sessions") == {"y26", "t1", "t2"}
    assert await ids(db, "courses") == {"c-alg", "c-read"}
    assert await ids(db, "classes") == {"k-alg1", "k-home"}
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    assert await ids(db, "enrollments") == {"e1", "e2", "e3"}
    assert await ids(db, "demographics") == {"u-s1"}

    term = await db.fetchrow("SELECT * FROM academic_sessions WHERE sourced_id = 't1'")
    assert (term["session_type"], str(term["start_date"]), term["school_year"]) == (
        "term",
        "2025-08-15",
        2026,
    )
    assert term["parent_internal_id"] == iid(EntityType.ACADEMIC_SESSION, "y26")
    terms = await db.fetch("SELECT class_internal_id, term_internal_id FROM class_terms")
    assert {(r[0], r[1]) for r in terms} == {
        (iid(EntityType.CLASS, "k-alg1"), iid(EntityType.ACADEMIC_SESSION, "t1")),
        (iid(EntityType.CLASS, "k-alg1"), iid(EntityType.ACADEMIC_SESSION, "t2")),
        (iid(EntityType.CLASS, "k-home"), iid(EntityType.ACADEMIC_SESSION, "y26")),
    }
    teacher = await db.fetchrow("SELECT * FROM enrollments WHERE sourced_id = 'e1'")
    assert (teacher["role"], teacher["is_primary"]) == ("teacher", True)
    assert teacher["class_internal_id"] == iid(EntityType.CLASS, "k-alg1")
    assert teacher["user_internal_id"] == iid(EntityType.USER, "u-t1")
    links = await db.fetch("SELECT user_internal_id, agent_internal_id FROM guardian_links")
    assert {(r[0], r[1]) for r in links} == {
        (iid(EntityType.USER, "u-s1"), iid(EntityType.USER, "u-p1")),
        (iid(EntityType.USER, "u-p1"), iid(EntityType.USER, "u-s1")),
    }
    run = await db.fetchrow("SELECT * FROM sync_runs WHERE run_id = $1", run_id)
    assert (run["status"], run["fetch_status"], run["oneroster_version"]) == (
        "completed",
        "fetched",
        "1.1",
    )
    assert orjson.loads(run["file_counts"]) == {
        "orgs.csv": 3, "academicSessions.csv": 3, "courses.csv": 2, "classes.csv": 2,
        "users.csv": 4, "enrollments.csv": 3, "demographics.csv": 1,
    }  # fmt: skip


async def test_1_1_delta_updates_deletes_and_resolves_references_against_the_tenant(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bulk = write_bundle(tmp_path / "bulk", districts.bundle_1_1())
    await sync(settings, write_tenants(tmp_path / "bulk.toml", "d1", bulk), "d1")
    when = "2026-02-01T08:00:00Z"
    delta = write_bundle(
        tmp_path / "delta",
        {
            "users": [districts.USERS_1_1[2] | {"givenName": "Kimberly", "status": "active", "dateLastModified": when}],
            "enrollments": [
                districts.ENROLLMENTS[2] | {"status": "tobedeleted", "dateLastModified": when},
                {"sourcedId": "e4", "status": "active", "dateLastModified": when, "classSourcedId": "k-alg1",
                 "schoolSourcedId": "s1", "userSourcedId": "u-s2", "role": "student"},
                {"sourcedId": "e5", "status": "active", "dateLastModified": when, "classSourcedId": "k-nope",
                 "schoolSourcedId": "s1", "userSourcedId": "u-s2", "role": "student"},
            ],
        },
        mode="delta",
    )  # fmt: skip
    run_id = await sync(settings, write_tenants(tmp_path / "delta.toml", "d1", delta), "d1")

    assert await findings(db, run_id) == {
        ("dangling_reference", "error", "enrollments.csv", 4, "classSourcedId"),
    }
    assert await db.fetchval("SELECT given_name FROM users WHERE sourced_id = 'u-s2'") == "Kimberly"
    assert await ids(db, "enrollments") == {"e1", "e2", "e4"}  # e3 archived, e5 rejected
    e4 = await db.fetchrow("SELECT * FROM enrollments WHERE sourced_id = 'e4'")
    assert e4["class_internal_id"] == iid(EntityType.CLASS, "k-alg1")
    rejected = await db.fetch(
        "SELECT sourced_id, origin_row FROM rejected_records WHERE run_id = $1", run_id
    )
    assert [tuple(r) for r in rejected] == [("e5", 4)]


async def test_1_2_bundles_with_roles_and_user_profiles_in_both_users_layouts(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    files = districts.bundle_1_2()
    bundle_121 = write_bundle(tmp_path / "v121", files, version="1.2")
    bundle_120 = write_bundle(
        tmp_path / "v120", files, version="1.2", headers={"users": list(USERS_1_2_0.names)}
    )
    run_121 = await sync(settings, write_tenants(tmp_path / "a.toml", "d1", bundle_121), "d1")
    run_120 = await sync(settings, write_tenants(tmp_path / "b.toml", "d2", bundle_120), "d2")

    assert await findings(db, run_121) == set()
    assert await findings(db, run_120) == set()
    for tenant in ("d1", "d2"):
        assert await ids(db, "users", tenant) == {"u-t1", "u-s1", "u-s2", "u-p1"}
        assert await ids(db, "user_roles", tenant) == {r["sourcedId"] for r in districts.ROLES_1_2}
        assert await ids(db, "user_profiles", tenant) == {"up-t1"}
    counselor = await db.fetchrow(
        "SELECT * FROM user_roles WHERE tenant_id = 'd1' AND sourced_id = 'r-u-t1-s2'"
    )
    assert (counselor["role"], counselor["role_type"]) == ("counselor", "primary")
    assert counselor["org_internal_id"] == iid(EntityType.ORG, "s2")
    assert counselor["user_profile_internal_id"] == iid(EntityType.USER_PROFILE, "up-t1")
    user = await db.fetchrow("SELECT * FROM users WHERE tenant_id = 'd1' AND sourced_id = 'u-t1'")
    assert (user["role"], user["user_master_identifier"]) == (None, "M-u-t1")


def broken_bundle(folder: Path) -> Path:
    users_header = [
        *(("givenname" if n == "givenName" else n) for n in USERS_1_1.names),
        "shoeSize",
        "metadata.house",
    ]
    user = {
        "enabledUser": "true",
        "orgSourcedIds": "s1",
        "role": "student",
        "givenname": "A",
        "familyName": "B",
    }
    bundle = write_bundle(
        folder,
        {
            "orgs": [
                {"sourcedId": "d1", "name": "District", "type": "district"},
                {"sourcedId": "s1", "name": "School", "type": "school", "parentSourcedId": "d1"},
                {"sourcedId": "x1", "name": "Loop A", "type": "school", "parentSourcedId": "x2"},
                {"sourcedId": "x2", "name": "Loop B", "type": "school", "parentSourcedId": "x1"},
            ],
            "users": [
                user | {"sourcedId": "u1", "username": "u1", "enabledUser": "TRUE", "metadata.house": "Blue"},
                user | {"sourcedId": "u2", "username": "u2", "role": "principal"},
                user | {"sourcedId": "u1", "username": "u1-again"},
                user | {"sourcedId": "u3", "username": "u3", "orgSourcedIds": "nowhere"},
                user | {"sourcedId": "u4", "username": "u4", "grades": "K"},
            ],
            "enrollments": [
                {"sourcedId": "e1", "classSourcedId": "k1", "schoolSourcedId": "s1", "userSourcedId": "u1", "role": "student"},
            ],
        },
        modes={"demographics": "bulk"},
        headers={"users": users_header},
    )  # fmt: skip
    (bundle / "results.csv").write_text("sourcedId\nr1\n")
    return bundle


async def test_a_broken_bundle_names_every_fault_and_lands_only_good_rows(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = broken_bundle(tmp_path / "broken")
    run_id = await sync(settings, write_tenants(tmp_path / "t.toml", "d1", bundle), "d1")

    assert await findings(db, run_id) == {
        ("missing_file", "error", "demographics.csv", None, None),
        ("org_cycle", "error", "orgs.csv", 4, "parentSourcedId"),
        ("org_cycle", "error", "orgs.csv", 5, "parentSourcedId"),
        ("header_case", "warning", "users.csv", 1, "givenname"),
        ("unknown_column", "warning", "users.csv", 1, "shoeSize"),
        ("boolean_case", "warning", "users.csv", 2, "enabledUser"),
        ("invalid_enumeration", "error", "users.csv", 3, "role"),
        ("duplicate_sourced_id", "error", "users.csv", 4, "sourcedId"),
        ("dangling_reference", "error", "users.csv", 5, "orgSourcedIds"),
        ("invalid_grade", "warning", "users.csv", 6, "grades"),
        ("dangling_reference", "error", "enrollments.csv", 2, "classSourcedId"),
        # file.classes=absent while the bulk enrollments.csv references classes.
        ("manifest_absent_referenced", "warning", "manifest.csv", 6, "value"),
    }
    assert await ids(db, "orgs") == {"d1", "s1"}
    assert await ids(db, "users") == {"u1", "u4"}
    assert await ids(db, "enrollments") == set()
    u1 = await db.fetchrow("SELECT enabled, given_name, payload FROM users WHERE sourced_id = 'u1'")
    assert (u1["enabled"], u1["given_name"]) == (True, "A")
    assert orjson.loads(u1["payload"])["metadata.house"] == "Blue"
    run = await db.fetchrow("SELECT * FROM sync_runs WHERE run_id = $1", run_id)
    assert orjson.loads(run["skipped_files"]) == {
        "results.csv": "gradebook/resource data: not rostering, not ingested"
    }
    rejected = await db.fetchval("SELECT count(*) FROM rejected_records WHERE run_id = $1", run_id)
    assert rejected == 6  # x1, x2, u2, u1 (again), u3, e1


async def test_the_strict_profile_rejects_every_row_of_a_file_with_header_faults(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = broken_bundle(tmp_path / "broken")
    tenants = write_tenants(tmp_path / "t.toml", "d1", bundle, validation="strict")
    run_id = await sync(settings, tenants, "d1")

    assert await ids(db, "users") == set()
    rows = await db.fetch(
        "SELECT DISTINCT row FROM findings WHERE run_id = $1 AND code = 'file_rejected'", run_id
    )
    assert {r["row"] for r in rows} == {2, 3, 4, 5, 6}
    severities = dict(
        await db.fetch("SELECT DISTINCT code, severity FROM findings WHERE run_id = $1", run_id)
    )
    assert severities["header_case"] == "error"
    assert severities["boolean_case"] == "error"


async def test_an_unreadable_bundle_fails_its_run_with_the_reason(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = tmp_path / "no-manifest"
    folder.mkdir()
    (folder / "users.csv").write_text("sourcedId\n")
    tenants = write_tenants(tmp_path / "t.toml", "d1", folder)
    cli = CliSettings(**{**settings.model_dump(), "tenants_file": tenants})
    async with running_pipeline(settings, tenants):
        command = await request_sync(cli, "d1", None)
        async with asyncio.timeout(60):
            while True:
                row = await db.fetchrow(
                    "SELECT fetch_status, fetch_error FROM sync_runs WHERE run_id = $1", command.run_id
                ) if await db.fetchval("SELECT to_regclass('sync_runs')") else None  # fmt: skip
                if row is not None and row["fetch_status"] == "failed":
                    break
                await asyncio.sleep(0.2)
    assert "no manifest.csv" in row["fetch_error"]


async def test_the_run_report_prints_totals_and_exports_every_finding_as_csv(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenants = write_tenants(tmp_path / "t.toml", "d1", broken_bundle(tmp_path / "broken"))
    run_id = await sync(settings, tenants, "d1")
    export = tmp_path / "findings.csv"
    cli = CliSettings(**{**settings.model_dump(), "tenants_file": tenants})
    await print_run_report(cli, "d1", run_id, limit=1, csv_path=export)

    printed = capsys.readouterr().out
    assert "completed (fetch fetched, OneRoster 1.1)" in printed
    assert "skipped results.csv: gradebook/resource data" in printed
    assert "error   [org_cycle] orgs.csv:4 column parentSourcedId" in printed
    assert "orgs.csv:5" not in printed  # --limit 1: the first finding of each code only
    with export.open() as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == await db.fetchval(
        "SELECT count(*) FROM findings WHERE run_id = $1", run_id
    )
    assert {"severity", "code", "file", "row", "column", "value", "message"} <= set(exported[0])


async def test_a_bundle_dropped_in_an_inbox_is_synced_once_and_moved_with_its_report(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    inbox = tmp_path / "sftp"
    inbox.mkdir()
    tenants = tmp_path / "t.toml"
    tenants.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\n[[tenants.sources]]\nid = "sftp"\nkind = "inbox"\n'
        f'path = "{inbox}"\nsettle_seconds = 0\n'
    )
    staging = write_bundle(tmp_path / "staging", districts.bundle_1_1())
    archive = Path(shutil.make_archive(str(tmp_path / "nightly"), "zip", staging))
    async with running_pipeline(settings, tenants, inbox_poll_seconds=0.2):
        archive.rename(inbox / "nightly.zip")  # the drop: an atomic rename, as SFTP servers do
        async with asyncio.timeout(90):
            while not list(inbox.glob("processed/*_nightly.zip.report.json")):
                await asyncio.sleep(0.2)
        (report_path,) = inbox.glob("processed/*.report.json")
        report = orjson.loads(report_path.read_text())
        await wait_for_run(settings, "d1", UUID(report["run_id"]))
        await asyncio.sleep(1)  # a few more scans: the bundle must not be taken again

    assert report["phase"] == "fetched"
    assert report["file_counts"]["users.csv"] == 4
    assert list(inbox.glob("processed/*_nightly.zip"))
    assert list((inbox / ".processing").iterdir()) == []
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    assert await db.fetchval("SELECT count(*) FROM sync_runs") == 1


async def test_1_1_and_1_2_give_the_same_canonical_user_org_roles(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    v11 = write_bundle(tmp_path / "v11", districts.bundle_1_1())
    v12 = write_bundle(tmp_path / "v12", districts.bundle_1_2(), version="1.2")
    await sync(settings, write_tenants(tmp_path / "a.toml", "d1", v11), "d1")
    await sync(settings, write_tenants(tmp_path / "b.toml", "d2", v12), "d2")

    async def roles(tenant: str) -> set[tuple[object, ...]]:
        """(user sourcedId, org sourcedId, role, where it was declared)."""
        rows = await db.fetch(
            "SELECT u.sourced_id, o.sourced_id, r.role, r.declared_in FROM user_org_roles r"
            " JOIN users u ON u.internal_id = r.user_internal_id"
            " JOIN orgs o ON o.internal_id = r.org_internal_id WHERE r.tenant_id = $1",
            tenant,
        )
        return {tuple(r)[:3] for r in rows} | {("declared in", r[3]) for r in rows}

    from_users, from_roles = await roles("d1"), await roles("d2")
    assert ("declared in", "users") in from_users
    assert ("declared in", "roles") in from_roles
    same = {r for r in from_users if r[0] != "declared in"}
    assert len(same) == 4
    assert {r for r in from_roles if r[0] != "declared in"} == same | {("u-t1", "s2", "counselor")}
