"""A source limited to some schools: only their records land, the rest is skipped (counted, not
rejected), nothing dangles, and leaving the selection archives like a deletion, under the hold.
The same selection over the bundled OneRoster server lands the same rows."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.holds import decide
from rostersync_libs.run_reports.documents import run_document
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer

from tests.e2e import cli_settings, ids, sync
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration

TABLES = {"orgs.csv": "orgs", "courses.csv": "courses", "classes.csv": "classes",
          "users.csv": "users", "enrollments.csv": "enrollments",
          "demographics.csv": "demographics"}  # fmt: skip


def rows(bundle: Path, file: str) -> list[dict[str, str]]:
    with (bundle / file).open() as handle:
        return list(csv.DictReader(handle))


def expected(bundle: Path, schools: set[str]) -> dict[str, set[str]]:
    """What the selection keeps, worked out from the generated district's shape (every org is
    the district or a school; guardians are attached to their student's school)."""
    classes = {
        c["sourcedId"] for c in rows(bundle, "classes.csv") if c["schoolSourcedId"] in schools
    }
    enrollments = [e for e in rows(bundle, "enrollments.csv") if e["classSourcedId"] in classes]
    users = rows(bundle, "users.csv")
    base = {e["userSourcedId"] for e in enrollments} | {
        u["sourcedId"] for u in users if set(u["orgSourcedIds"].split(",")) & schools
    }
    agents = {u["sourcedId"]: set(filter(None, u["agentSourcedIds"].split(","))) for u in users}
    kept_users = base | {a for u in base for a in agents[u]}
    kept_users |= {u for u, listed in agents.items() if listed & base}
    return {
        "orgs": {"org-district", *schools},
        "courses": {
            c["courseSourcedId"] for c in rows(bundle, "classes.csv") if c["sourcedId"] in classes
        },
        "classes": classes,
        "users": kept_users,
        "enrollments": {e["sourcedId"] for e in enrollments},
        "demographics": {d["sourcedId"] for d in rows(bundle, "demographics.csv")} & kept_users,
    }


def also_at_high_school(bundle: Path, school: str) -> None:
    """One student of ``school`` attends the high school too (so has an org outside a selection)."""
    users = rows(bundle, "users.csv")
    student = next(u for u in users if u["role"] == "student" and u["orgSourcedIds"] == school)
    student["orgSourcedIds"] = f"{school},org-hs1"
    with (bundle / "users.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(users[0]))
        writer.writeheader()
        writer.writerows(users)


def tenants_file(path: Path, source: str) -> Path:
    path.write_text(f'[[tenants]]\nid = "d1"\nname = "D"\n{source}')
    return path


def csv_source(bundle: Path, schools: list[str]) -> str:
    return (f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{bundle}"\n'
            f"[tenants.sources.selection]\nschools = {orjson.dumps(schools).decode()}\n")  # fmt: skip


async def landed(db: asyncpg.Connection, tenant: str = "d1") -> dict[str, set[str]]:
    return {table: await ids(db, table, tenant) for table in TABLES.values()}


async def clean_run(db: asyncpg.Connection, tenant: str, run_id: UUID) -> dict[str, Any]:
    """The run's report (as ``report --json``), checked: no error, nothing dangling."""
    errors = await db.fetch(
        "SELECT code, file, row FROM findings WHERE run_id = $1 AND severity = 'error'", run_id
    )
    assert errors == []
    assert await db.fetchval("SELECT dangling FROM run_outcomes WHERE run_id = $1", run_id) == 0
    report = await run_document(db, tenant, run_id, 5)
    assert report is not None
    return report


async def test_csv_selection_then_narrowing_archives_under_the_hold(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, DistrictShape(students=130))  # schools org-es1, org-ms1, org-hs1
    also_at_high_school(bundle, "org-es1")
    two = tenants_file(tmp_path / "two.toml", csv_source(bundle, ["org-es1", "NCESms1"]))
    first = await sync(settings, two, "d1")

    want = expected(bundle, {"org-es1", "org-ms1"})
    assert await landed(db) == want
    report = await clean_run(db, "d1", first)
    assert report["skipped_by_selection"] == {
        file: len(rows(bundle, file)) - len(want[table])
        for file, table in TABLES.items()
        if len(rows(bundle, file)) > len(want[table])
    }
    # Students also attending the unselected high school keep only their selected school.
    both = [u for u in rows(bundle, "users.csv") if u["sourcedId"] in want["users"]
            and "org-hs1" in u["orgSourcedIds"]]  # fmt: skip
    assert both
    assert report["trimmed_by_selection"] == {"users.csv": len(both)}
    outside = await db.fetchval(
        "SELECT count(*) FROM user_orgs WHERE org_internal_id NOT IN"
        " (SELECT internal_id FROM orgs WHERE archived_at IS NULL)"
    )
    assert outside == 0
    assert {f["rejected_records"] for f in report["files"]} == {0}

    # Narrowing to one school: the middle school's records leave like a deletion; that is more
    # than the tenant's hold threshold, so the run is held until approved.
    one = tenants_file(tmp_path / "one.toml", csv_source(bundle, ["org-es1"]))
    narrowed = await sync(settings, one, "d1")
    outcome = await db.fetchrow("SELECT status, numbers FROM run_outcomes WHERE run_id = $1",
                                narrowed)  # fmt: skip
    assert outcome["status"] == "held"
    assert await landed(db) == want  # nothing archived yet
    report = await clean_run(db, "d1", narrowed)
    assert sum(report["unchanged"].values()) > 0  # kept records went as unchanged lists
    async with running_pipeline(settings, one):
        await decide(settings, "d1", narrowed, approve=True)
        async with asyncio.timeout(60):
            while await db.fetchval(
                "SELECT status FROM run_outcomes WHERE run_id = $1", narrowed
            ) == "held":  # fmt: skip
                await asyncio.sleep(0.2)
    assert await landed(db) == expected(bundle, {"org-es1"})
    archived = await db.fetchval(
        "SELECT count(*) FROM users WHERE archived_at IS NOT NULL AND tenant_id = 'd1'"
    )
    assert archived == len(want["users"] - expected(bundle, {"org-es1"})["users"])


async def test_rest_selection_lands_what_the_csv_selection_lands(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, DistrictShape(students=130))
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    selection = '[tenants.sources.selection]\nschools = ["NCESes1"]\nschool_years = ["2026"]\n'
    async with OneRosterServer(bundle, oauth1={"key": "secret"}) as server:
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            f'[[tenants]]\nid = "csv"\nname = "C"\n[[tenants.sources]]\nid = "csv"\n'
            f'path = "{bundle}"\n{selection}'
            '[[tenants]]\nid = "api"\nname = "A"\n[[tenants.sources]]\nid = "api"\n'
            f'kind = "oneroster-api"\nbase_url = "{server.base_url}"\npage_size = 50\n'
            "delta_overlap_seconds = 0\n"
            'auth = { kind = "oauth1", key = "key", secret_env = "ROSTERSYNC_TEST_O1" }\n'
            f"{selection}"
        )
        async with running_pipeline(settings, tenants):
            runs = {}
            for tenant in ("csv", "api"):
                command = await request_sync(cli_settings(settings, tenants), tenant, None)
                await wait_for_run(settings, tenant, command.run_id, timeout=120)
                runs[tenant] = await clean_run(db, tenant, command.run_id)
            want = expected(bundle, {"org-es1"})
            assert await landed(db, "csv") == want
            assert await landed(db, "api") == want
            skipped_api = runs["api"]["skipped_by_selection"]
            assert skipped_api["/users"] == runs["csv"]["skipped_by_selection"]["users.csv"]
            assert (skipped_api["/enrollments"]
                    == runs["csv"]["skipped_by_selection"]["enrollments.csv"])  # fmt: skip

            # A delta: a change inside the selection lands, one outside is skipped.
            users = {u["sourcedId"]: u for u in rows(bundle, "users.csv")}
            inside = next(u for u in sorted(want["users"]) if users[u]["role"] == "student")
            outside = next(u for u in sorted(users) if u not in want["users"])
            for user in (inside, outside):
                server.data.upsert("users", {**users[user], "givenName": "Renamed"})
            command = await request_sync(cli_settings(settings, tenants), "api", None)
            await wait_for_run(settings, "api", command.run_id, timeout=120)
            delta = await clean_run(db, "api", command.run_id)
            assert delta["skipped_by_selection"] == {"/users": 1}
            renamed = await db.fetch(
                "SELECT sourced_id FROM users WHERE tenant_id = 'api' AND given_name = 'Renamed'"
            )
            assert [r["sourced_id"] for r in renamed] == [inside]
            assert await landed(db, "api") == want


async def test_a_selection_naming_no_school_fails_the_run_before_publishing(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, DistrictShape(students=30))
    typo = tenants_file(tmp_path / "typo.toml", csv_source(bundle, ["org-es9"]))
    async with running_pipeline(settings, typo):
        command = await request_sync(cli_settings(settings, typo), "d1", None)
        async with asyncio.timeout(60):
            while await db.fetchval(
                "SELECT fetch_status FROM sync_runs WHERE run_id = $1", command.run_id
            ) in (None, "started"):  # fmt: skip
                await asyncio.sleep(0.2)
    run = await db.fetchrow("SELECT fetch_status, fetch_error, file_counts FROM sync_runs"
                            " WHERE run_id = $1", command.run_id)  # fmt: skip
    assert run["fetch_status"] == "failed"
    assert run["fetch_error"] == (
        "the source's selection names no orgs record it has: schools = [org-es9];"
        " nothing was published"
    )
    assert await landed(db) == {table: set() for table in TABLES.values()}
