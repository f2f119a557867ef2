"""Deletes, bulk absence, reappearance, safety holds and replay, end to end on Kafka + Postgres."""

from __future__ import annotations

import asyncio
import csv
import shutil
from pathlib import Path

import asyncpg
import orjson
import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.holds import decide, print_holds
from rostersync_libs.events import EntityType
from rostersync_libs.ids import internal_id
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import ids, replay_differences, sync
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration


async def test_tobedeleted_bulk_absence_reappearance_and_rejected_records(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    def tenants_for(name: str, files: dict[str, list[dict[str, str]]], mode: str = "bulk") -> Path:
        return write_tenants(
            tmp_path / f"{name}.toml", "d1", write_bundle(tmp_path / name, files, mode=mode)
        )

    full = districts.bundle_1_1()
    await sync(settings, tenants_for("r1", full), "d1")
    kim = internal_id("d1", EntityType.USER, "u-s2")

    # A bulk snapshot without Kim (and her enrollment): both archived once the run completes.
    without_kim = full | {
        "users": [u for u in districts.USERS_1_1 if u["sourcedId"] != "u-s2"],
        "enrollments": [e for e in districts.ENROLLMENTS if e["userSourcedId"] != "u-s2"],
    }
    await sync(settings, tenants_for("r2", without_kim), "d1")
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-p1"}
    assert await ids(db, "enrollments") == {"e1", "e2"}
    assert await db.fetchval("SELECT count(*) FROM user_orgs WHERE user_internal_id = $1", kim) == 0

    # She comes back: restored with the same internal id, memberships too.
    await sync(settings, tenants_for("r3", full), "d1")
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    assert await db.fetchval("SELECT internal_id FROM users WHERE sourced_id = 'u-s2'") == kim
    assert await db.fetchval("SELECT count(*) FROM user_orgs WHERE user_internal_id = $1", kim) == 1
    assert await ids(db, "enrollments") == {"e1", "e2", "e3"}

    # A delta deletes Sam: he, his enrollment and his guardian links go.
    when = "2026-03-01T00:00:00Z"
    gone = {"users": [districts.USERS_1_1[1] | {"status": "tobedeleted", "dateLastModified": when}]}
    await sync(settings, tenants_for("r4", gone, mode="delta"), "d1")
    assert await ids(db, "users") == {"u-t1", "u-s2", "u-p1"}
    assert await ids(db, "enrollments") == {"e1", "e3"}
    assert await db.fetchval("SELECT count(*) FROM guardian_links") == 0

    # A bulk run in which Tina's row is broken: rejected, but seen, so not archived.
    broken_tina = full | {
        "users": [districts.USERS_1_1[0] | {"role": "principal"}, *districts.USERS_1_1[1:]]
    }
    run5 = await sync(settings, tenants_for("r5", broken_tina), "d1")
    assert "u-t1" in await ids(db, "users")
    assert await db.fetchval("SELECT last_seen_run FROM users WHERE sourced_id = 'u-t1'") == run5
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}  # Sam is back too


def halve_users(source: Path, target: Path) -> int:
    """A copy of a bundle whose users.csv lost every other student: how many were dropped."""
    shutil.copytree(source, target)
    with (source / "users.csv").open() as handle:
        rows = list(csv.reader(handle))
    kept = [rows[0]] + [r for n, r in enumerate(rows[1:]) if r[5] != "student" or n % 2 == 0]
    with (target / "users.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)
    return len(rows) - len(kept)


async def test_a_run_over_the_threshold_is_held_then_approved_and_a_replay_equals_live(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    generate(tmp_path / "full", DistrictShape(students=120))
    dropped = halve_users(tmp_path / "full", tmp_path / "half")
    full = write_tenants(tmp_path / "full.toml", "d1", tmp_path / "full")
    half = write_tenants(tmp_path / "half.toml", "d1", tmp_path / "half")
    await sync(settings, full, "d1")
    active = await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL")

    held_run = await sync(settings, half, "d1")
    outcome = await db.fetchrow(
        "SELECT status, numbers FROM run_outcomes WHERE run_id = $1", held_run
    )
    numbers = orjson.loads(outcome["numbers"])
    assert outcome["status"] == "held"
    assert numbers["users"]["archive"] == dropped
    assert numbers["users"]["active"] == active
    # Held: nothing destructive applied yet.
    assert await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL") == active
    await print_holds(settings, "d1", everything=False)
    assert f"users: {dropped} of {active}" in capsys.readouterr().out

    async with running_pipeline(settings, half):
        await decide(settings, "d1", held_run, approve=True)
        async with asyncio.timeout(60):
            while (
                await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held_run)
                == "held"
            ):
                await asyncio.sleep(0.2)
    assert (
        await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", held_run)
        == "approved"
    )
    assert (
        await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL")
        == active - dropped
    )

    # The next full snapshot restores everyone (a small change: applied without a hold).
    restore = await sync(settings, full, "d1")
    assert (
        await db.fetchval("SELECT status FROM run_outcomes WHERE run_id = $1", restore) == "applied"
    )
    assert await db.fetchval("SELECT count(*) FROM users WHERE archived_at IS NULL") == active

    # Replay: a fresh schema rebuilt from the topics equals the live one, hold decision included.
    differences = await replay_differences(settings, db)
    assert "users" in differences
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}


async def test_new_sourced_ids_on_an_sis_upgrade_keep_every_person_s_internal_id(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A 1.1 → 1.2 upgrade that re-issues every user sourcedId: re-keyed by username."""
    tenants = tmp_path / "t.toml"

    def declare(bundle: Path) -> Path:
        tenants.write_text(
            '[[tenants]]\nid = "d1"\nname = "D"\n[tenants.matching]\nrekey_users_by = ["username"]\n'
            f'[[tenants.sources]]\nid = "csv"\npath = "{bundle}"\n'
        )
        return tenants

    await sync(settings, declare(write_bundle(tmp_path / "v11", districts.bundle_1_1())), "d1")
    before = dict(await db.fetch("SELECT username, internal_id FROM users"))

    def renamed(value: str) -> str:
        return ",".join(f"new-{v}" for v in value.split(",")) if value.startswith("u-") else value

    v12 = districts.bundle_1_2()
    v12 = v12 | {
        "users": [{k: renamed(v) if k in ("sourcedId", "agentSourcedIds") else v for k, v in u.items()} for u in v12["users"]],
        "roles": [r | {"userSourcedId": renamed(r["userSourcedId"])} for r in v12["roles"]],
        "userProfiles": [p | {"userSourcedId": renamed(p["userSourcedId"])} for p in v12["userProfiles"]],
        "enrollments": [e | {"userSourcedId": renamed(e["userSourcedId"])} for e in v12["enrollments"]],
        "demographics": [d | {"sourcedId": renamed(d["sourcedId"])} for d in v12["demographics"]],
    }  # fmt: skip
    await sync(settings, declare(write_bundle(tmp_path / "v12", v12, version="1.2")), "d1")

    after = dict(
        await db.fetch("SELECT username, internal_id FROM users WHERE archived_at IS NULL")
    )
    assert after == before  # the same people, the same ids, no duplicates
    assert await ids(db, "users") == {"new-u-t1", "new-u-s1", "new-u-s2", "new-u-p1"}
    assert await db.fetchval("SELECT count(*) FROM users") == 4
    sam = before["sam"]
    assert (
        await db.fetchval("SELECT user_internal_id FROM enrollments WHERE sourced_id = 'e2'") == sam
    )
