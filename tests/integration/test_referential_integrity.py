"""Nothing lands that points at a rejected or missing record (docs/architecture.md, "Referential
integrity"), end to end on real Kafka and PostgreSQL: the dependents of a rejected record are
rejected with a finding that names the chain, nothing dangling is active, and a corrected bundle
lands them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from rostersync_cli.actions import print_run_report
from rostersync_cli.settings import CliSettings
from rostersync_libs.oneroster.columns import USERS_1_1
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer
from rostersync_writer.dangling import count_dangling

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import ids, sync

pytestmark = pytest.mark.integration

Rows = list[dict[str, str]]


def replaced(rows: Rows, sourced_id: str, **changes: str) -> Rows:
    return [r | changes if r["sourcedId"] == sourced_id else r for r in rows]


async def chained(db: asyncpg.Connection, run_id: UUID) -> dict[tuple[str, str], dict[str, Any]]:
    """The writer's refusals of a run, by (file, sourcedId)."""
    rows = await db.fetch(
        "SELECT f.code, f.file, f.row, f.column_name, f.value, f.message, f.sourced_id"
        " FROM findings f WHERE f.run_id = $1 AND f.stage = 'writer'",
        run_id,
    )
    return {(r["file"], r["sourced_id"]): dict(r) for r in rows}


async def rejected_by_writer(db: asyncpg.Connection, run_id: UUID) -> set[tuple[str, str]]:
    rows = await db.fetch(
        "SELECT entity, sourced_id FROM rejected_records WHERE run_id = $1 AND stage = 'writer'",
        run_id,
    )
    return {(r["entity"], r["sourced_id"]) for r in rows}


async def assert_nothing_dangling(db: asyncpg.Connection, tenant: str = "d1") -> None:
    assert await count_dangling(db, tenant) == {}
    outcome = await db.fetch("SELECT dangling FROM run_outcomes WHERE tenant_id = $1", tenant)
    assert all(r["dangling"] == 0 for r in outcome)


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_one_rejected_user_rejects_its_enrollments_and_demographics(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    validation: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = districts.bundle_1_1() | {
        "users": replaced(districts.USERS_1_1, "u-s1", role="principal")
    }
    bundle = write_bundle(tmp_path / "b", files)
    run_id = await sync(
        settings, write_tenants(tmp_path / "t.toml", "d1", bundle, validation), "d1"
    )

    assert await ids(db, "users") == {"u-t1", "u-s2", "u-p1"}
    assert await ids(db, "enrollments") == {"e1", "e3"}
    assert await ids(db, "demographics") == set()
    refused = await chained(db, run_id)
    enrollment = refused[("enrollments.csv", "e2")]
    assert (enrollment["code"], enrollment["row"], enrollment["column_name"]) == (
        "reference_rejected",
        3,
        "userSourcedId",
    )
    assert enrollment["value"] == "u-s1"
    assert enrollment["message"] == (
        "that user was rejected in this run (users.csv:3 invalid_enumeration)"
    )
    demographics = refused[("demographics.csv", "u-s1")]
    assert (demographics["code"], demographics["column_name"]) == (
        "reference_rejected",
        "sourcedId",
    )
    assert await rejected_by_writer(db, run_id) == {("enrollments", "e2"), ("demographics", "u-s1")}
    cli = CliSettings(**{**settings.model_dump(), "tenants_file": tmp_path / "t.toml"})
    await print_run_report(cli, "d1", run_id, limit=5)
    printed = capsys.readouterr().out
    assert (
        "error   [reference_rejected] enrollments.csv:3 column userSourcedId: that user was"
        " rejected in this run (users.csv:3 invalid_enumeration)"
    ) in printed
    # The guardian's link to the rejected student goes too (an optional reference).
    assert await db.fetchval("SELECT count(*) FROM guardian_links") == 0
    await assert_nothing_dangling(db)

    # The corrected bundle lands them all.
    fixed = write_bundle(tmp_path / "fixed", districts.bundle_1_1())
    await sync(settings, write_tenants(tmp_path / "t2.toml", "d1", fixed, validation), "d1")
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    assert await ids(db, "enrollments") == {"e1", "e2", "e3"}
    assert await ids(db, "demographics") == {"u-s1"}
    assert await db.fetchval("SELECT count(*) FROM guardian_links") == 2
    await assert_nothing_dangling(db)


async def test_users_file_rejected_whole_rejects_every_dependent(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # Strict: an unknown column is a file-level error, so every row of users.csv is rejected.
    columns = [*USERS_1_1.names, "nickname"]
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1(), headers={"users": columns})
    run_id = await sync(settings, write_tenants(tmp_path / "t.toml", "d1", bundle, "strict"), "d1")

    assert await ids(db, "users") == set()
    assert await ids(db, "enrollments") == set()
    assert await ids(db, "demographics") == set()
    assert await db.fetchval("SELECT count(*) FROM user_orgs") == 0
    assert await ids(db, "classes") == {"k-alg1", "k-home"}  # classes do not point at users
    refused = await chained(db, run_id)
    assert {k for k in refused if k[0] == "enrollments.csv"} == {
        ("enrollments.csv", e) for e in ("e1", "e2", "e3")
    }
    assert "file_rejected" in refused[("enrollments.csv", "e1")]["message"]
    await assert_nothing_dangling(db)

    fixed = write_bundle(tmp_path / "fixed", districts.bundle_1_1())
    await sync(settings, write_tenants(tmp_path / "t2.toml", "d1", fixed, "strict"), "d1")
    assert await ids(db, "enrollments") == {"e1", "e2", "e3"}
    assert await ids(db, "demographics") == {"u-s1"}
    await assert_nothing_dangling(db)


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_all_orgs_rejected_rejects_everything_that_points_at_them(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path, validation: str
) -> None:
    orgs = [o | {"type": "campus"} for o in districts.ORGS]  # not an org type: every org rejected
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1() | {"orgs": orgs})
    run_id = await sync(
        settings, write_tenants(tmp_path / "t.toml", "d1", bundle, validation), "d1"
    )

    for table in ("orgs", "courses", "classes", "users", "enrollments", "demographics"):
        assert await ids(db, table) == set(), table
    assert await db.fetchval("SELECT count(*) FROM user_orgs") == 0
    assert await db.fetchval("SELECT count(*) FROM class_terms") == 0
    assert await ids(db, "academic_sessions") == {"y26", "t1", "t2"}
    refused = await chained(db, run_id)
    # The chain: a class is refused for its course or school, its enrollments for the class.
    assert refused[("courses.csv", "c-alg")]["message"].startswith("that org was rejected")
    assert refused[("enrollments.csv", "e1")]["code"] == "reference_rejected"
    await assert_nothing_dangling(db)


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_a_rejected_term_rejects_its_class_and_the_class_its_enrollments(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path, validation: str
) -> None:
    sessions = replaced(districts.SESSIONS, "t2", type="quarter")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1() | {"academicSessions": sessions})
    run_id = await sync(
        settings, write_tenants(tmp_path / "t.toml", "d1", bundle, validation), "d1"
    )

    assert await ids(db, "classes") == {"k-home"}
    assert await ids(db, "enrollments") == {"e3"}
    assert await db.fetchval("SELECT count(*) FROM class_terms") == 1
    refused = await chained(db, run_id)
    assert refused[("classes.csv", "k-alg1")]["column_name"] == "termSourcedIds"
    assert refused[("classes.csv", "k-alg1")]["value"] == "t2"
    assert "classes.csv:2 reference_rejected" in refused[("enrollments.csv", "e1")]["message"]
    await assert_nothing_dangling(db)


async def test_a_bad_new_version_keeps_the_good_row_and_its_dependents_are_refused(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = write_tenants(
        tmp_path / "t.toml", "d1", write_bundle(tmp_path / "b", districts.bundle_1_1())
    )
    await sync(settings, tenants, "d1")
    before = await db.fetchrow("SELECT * FROM enrollments WHERE sourced_id = 'e2'")

    # Next snapshot: the student's new version is bad, and their enrollment changed.
    files = districts.bundle_1_1() | {
        "users": replaced(districts.USERS_1_1, "u-s1", role="principal"),
        "enrollments": replaced(districts.ENROLLMENTS, "e2", primary="true"),
    }
    bundle = write_bundle(tmp_path / "b2", files)
    run_id = await sync(settings, write_tenants(tmp_path / "t2.toml", "d1", bundle), "d1")

    # The demographics did not change (sent as an unchanged list): the row stays as it was.
    assert await rejected_by_writer(db, run_id) == {("enrollments", "e2")}
    after = await db.fetchrow("SELECT * FROM enrollments WHERE sourced_id = 'e2'")
    # Not archived by the sweep (it was seen), not changed (its new version was refused).
    assert after["archived_at"] is None
    assert (after["is_primary"], after["content_hash"]) == (
        before["is_primary"],
        before["content_hash"],
    )
    assert after["last_seen_run"] == run_id
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    assert await ids(db, "demographics") == {"u-s1"}
    await assert_nothing_dangling(db)


@pytest.mark.parametrize("validation", ["lenient", "strict"])
async def test_a_1_2_delta_whose_only_user_is_rejected_lands_none_of_its_records(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path, validation: str
) -> None:
    base = write_bundle(tmp_path / "b", districts.bundle_1_2(), version="1.2")
    await sync(settings, write_tenants(tmp_path / "t.toml", "d1", base, validation), "d1")
    stamp = {"status": "active", "dateLastModified": "2026-02-01T00:00:00Z"}
    new_user = {"sourcedId": "u-new", "enabledUser": "maybe", "username": "newt",
                "givenName": "New", "familyName": "Kid"} | stamp  # fmt: skip
    delta = {
        "users": [new_user],
        "enrollments": [{"sourcedId": "e-new", "classSourcedId": "k-alg1", "schoolSourcedId": "s1",
                         "userSourcedId": "u-new", "role": "student"} | stamp],
        "demographics": [{"sourcedId": "u-new", "birthDate": "2011-01-01"} | stamp],
        "roles": [{"sourcedId": "r-new", "userSourcedId": "u-new", "roleType": "primary",
                   "role": "student", "orgSourcedId": "s1"} | stamp],
        "userProfiles": [{"sourcedId": "up-new", "userSourcedId": "u-new", "profileType": "lms",
                          "vendorId": "acme", "credentialType": "login",
                          "username": "newt"} | stamp],
    }  # fmt: skip
    bundle = write_bundle(tmp_path / "d", delta, version="1.2", mode="delta")
    run_id = await sync(
        settings, write_tenants(tmp_path / "t2.toml", "d1", bundle, validation), "d1"
    )

    assert await rejected_by_writer(db, run_id) == {
        ("enrollments", "e-new"),
        ("demographics", "u-new"),
        ("roles", "r-new"),
        ("userProfiles", "up-new"),
    }
    assert "u-new" not in await ids(db, "users")
    assert "e-new" not in await ids(db, "enrollments")
    assert "r-new" not in await ids(db, "user_roles")
    assert "up-new" not in await ids(db, "user_profiles")
    await assert_nothing_dangling(db)


async def test_archiving_a_user_archives_their_demographics_and_restores_them_with_the_user(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    full = write_tenants(
        tmp_path / "t.toml", "d1", write_bundle(tmp_path / "b", districts.bundle_1_1())
    )
    await sync(settings, full, "d1")
    without = districts.bundle_1_1() | {
        "users": [u for u in districts.USERS_1_1 if u["sourcedId"] != "u-s1"],
        "enrollments": [e for e in districts.ENROLLMENTS if e["userSourcedId"] != "u-s1"],
    }
    del without["demographics"]  # absent: only the cascade can archive them
    gone = write_tenants(tmp_path / "t2.toml", "d1", write_bundle(tmp_path / "b2", without))
    await sync(settings, gone, "d1")  # 4 users: below the hold's minimum
    assert "u-s1" not in await ids(db, "users")
    assert await ids(db, "demographics") == set()
    await assert_nothing_dangling(db)

    # The student comes back in a delta that does not carry their demographics.
    stamp = {"status": "active", "dateLastModified": "2026-03-01T00:00:00Z"}
    back = [u | stamp for u in districts.USERS_1_1 if u["sourcedId"] == "u-s1"]
    delta = write_bundle(tmp_path / "d", {"users": back}, mode="delta")
    await sync(settings, write_tenants(tmp_path / "t3.toml", "d1", delta), "d1")
    assert "u-s1" in await ids(db, "users")
    assert await ids(db, "demographics") == {"u-s1"}
    await assert_nothing_dangling(db)


async def test_over_the_rest_api_a_rejected_user_rejects_what_points_at_it(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = districts.bundle_1_1() | {
        "users": replaced(districts.USERS_1_1, "u-s1", role="principal")
    }
    bundle = write_bundle(tmp_path / "b", files)
    monkeypatch.setenv("ROSTERSYNC_TEST_O2", "s3cret")
    async with OneRosterServer(bundle, oauth2={"client": "s3cret"}) as server:
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            '[[tenants]]\nid = "d1"\nname = "D1"\n[[tenants.sources]]\nid = "api"\n'
            f'kind = "oneroster-api"\nbase_url = "{server.base_url}"\npage_size = 2\n'
            f'auth = {{ kind = "oauth2", token_url = "{server.token_url}", client_id = "client",'
            ' secret_env = "ROSTERSYNC_TEST_O2",'
            ' scopes = ["https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly",'
            ' "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly"] }\n'
        )
        run_id = await sync(settings, tenants, "d1")

    assert await ids(db, "users") == {"u-t1", "u-s2", "u-p1"}
    assert await ids(db, "enrollments") == {"e1", "e3"}
    assert await ids(db, "demographics") == set()
    assert await rejected_by_writer(db, run_id) == {("enrollments", "e2"), ("demographics", "u-s1")}
    refused = await db.fetchval(
        "SELECT message FROM findings WHERE run_id = $1 AND stage = 'writer' AND sourced_id = 'e2'",
        run_id,
    )
    assert refused.startswith("that user was rejected in this run (")
    assert "invalid_enumeration" in refused
    await assert_nothing_dangling(db)
