"""The change feed and the roster history over the admin API, on real Kafka and PostgreSQL:
pages, filters, tenant scoping, a long-poll answered by the next sync, a class as of an instant."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import request_sync
from rostersync_libs.events import EntityType
from rostersync_libs.ids import internal_id
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.api import api, api_settings, token
from tests.bundles import write_bundle, write_tenants
from tests.cli_process import cli
from tests.e2e import cli_settings
from tests.integration.test_change_feed import students_moved
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration


async def test_changes_pages_filters_long_poll_and_as_of(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "bundle", districts.bundle_1_1())
    tenants = write_tenants(tmp_path / "tenants.toml", "d1", bundle)
    viewer = await token(db, settings, "viewer", ["d1"])
    stranger = await token(db, settings, "admin", ["d2"])
    home = internal_id("d1", EntityType.CLASS, "k-home")

    async with (
        running_pipeline(settings, tenants),
        api(api_settings(settings, tenants, tmp_path / "uploads")) as http,
    ):
        first = await request_sync(cli_settings(settings, tenants), "d1", None)
        await wait_for_run(settings, "d1", first.run_id)
        page = (await http.get("/api/v1/tenants/d1/changes?limit=1000", headers=viewer)).json()
        last = page["last_sequence"]
        assert [c["sequence"] for c in page["items"]] == list(range(1, last + 1))
        assert page["next"] == last
        assert {c["run_id"] for c in page["items"]} == {str(first.run_id)}
        # Pages follow ``next``.
        one = (await http.get("/api/v1/tenants/d1/changes?limit=5", headers=viewer)).json()
        two = await http.get(f"/api/v1/tenants/d1/changes?limit=5&after={one['next']}",
                             headers=viewer)  # fmt: skip
        assert [c["sequence"] for c in one["items"] + two.json()["items"]] == list(range(1, 11))
        # Filters: an entity, a class.
        users = await http.get("/api/v1/tenants/d1/changes?entity=users&limit=1000", headers=viewer)
        assert {c["entity"] for c in users.json()["items"]} == {"users"}
        assert len(users.json()["items"]) == 4
        in_home = await http.get(f"/api/v1/tenants/d1/changes?class={home}", headers=viewer)
        assert {(c["entity"], c["sourced_id"]) for c in in_home.json()["items"]} == {
            ("classes", "k-home"), ("enrollments", "e3"), ("classTerms", "k-home")
        }  # fmt: skip
        # Another tenant's token sees nothing of d1, not even that it exists.
        assert (await http.get("/api/v1/tenants/d1/changes", headers=stranger)).status_code == 404
        assert (await http.get("/api/v1/tenants/d1/changes")).status_code == 401
        bad = await http.get("/api/v1/tenants/d1/changes?entity=grades", headers=viewer)
        assert bad.status_code == 422

        # A long-poll waits for the next changes: Kim moves, Lee arrives.
        waiting = asyncio.create_task(
            http.get(f"/api/v1/tenants/d1/changes?after={last}&wait=30", headers=viewer)
        )
        await asyncio.sleep(1)
        assert not waiting.done()
        write_bundle(bundle, students_moved())
        moved = await request_sync(cli_settings(settings, tenants), "d1", None)
        answered = (await waiting).json()
        assert answered["items"][0]["sequence"] == last + 1
        assert {c["run_id"] for c in answered["items"]} == {str(moved.run_id)}
        empty = await http.get(
            f"/api/v1/tenants/d1/changes?after={answered['last_sequence']}&wait=0.5", headers=viewer
        )
        assert empty.json()["items"] == []
        assert empty.json()["next"] == answered["last_sequence"]

        # The homeroom as of an instant before and after that run.
        at = await db.fetchval(
            "SELECT effective_at FROM change_log WHERE run_id = $1 LIMIT 1", moved.run_id
        )
        url = "/api/v1/tenants/d1/classes/k-home/enrollments"
        before = await http.get(url, params={"as_of": (at - timedelta(seconds=1)).isoformat()},
                                headers=viewer)  # fmt: skip
        after = await http.get(url, params={"as_of": at.isoformat()}, headers=viewer)
        assert [m["user_sourced_id"] for m in before.json()["items"]] == ["u-s2"]
        assert [m["user_sourced_id"] for m in after.json()["items"]] == ["u-s3"]
        by_id = await http.get(f"/api/v1/tenants/d1/classes/{home}/enrollments", headers=viewer)
        assert [m["sourced_id"] for m in by_id.json()["items"]] == ["e4"]
        assert (await http.get(url, headers=stranger)).status_code == 404
        missing = "/api/v1/tenants/d1/classes/k-nope/enrollments"
        assert (await http.get(missing, headers=viewer)).status_code == 404

    # The operator's command says the same.
    instant = (at - timedelta(seconds=1)).isoformat()
    shown = await cli(settings, tenants, "asof", "d1", instant, "--class", "k-home", "--json")
    assert shown.code == 0, shown.err
    assert [m["sourced_id"] for m in orjson.loads(shown.out)["items"]] == ["e3"]
    text = await cli(settings, tenants, "asof", "d1", at.isoformat(), "--class", "k-home")
    assert "e4" in text.out
    assert "u-s3" in text.out
