"""Admin API end to end: a district onboarded over HTTP is synced, reported, uploaded to, held,
previewed and approved, on real Kafka and PostgreSQL with the four services running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.settings import ServiceSettings

from tests.api import api, api_settings, token
from tests.bundles import without_enrollments, zipped
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration


async def test_a_district_onboarded_over_http_syncs_uploads_and_has_its_hold_approved(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=60))
    with (tmp_path / "bundle" / "users.csv").open("a") as users:  # rejected: no such role
        users.write("usr-bad,,,true,org-es1,wizard,bad.one,,Bad,One,,,,,,,,\n")
    admin = await token(db, settings, "admin")
    operator = await token(db, settings, "operator")
    viewer = await token(db, settings, "viewer")
    other = await token(db, settings, "admin", ["someone-else"])
    no_file = tmp_path / "no-tenants.toml"  # every tenant comes from the API
    district = {"id": "d1", "name": "District 1", "hold_threshold": 0.1,
                "sources": [{"id": "csv", "kind": "csv", "path": str(tmp_path / "bundle")}]}  # fmt: skip

    async with (
        running_pipeline(settings, no_file),
        api(api_settings(settings, no_file, tmp_path / "uploads")) as http,
    ):
        assert (await http.post("/api/v1/tenants", json=district, headers=admin)).status_code == 201
        assert (await http.post("/api/v1/tenants/d1/syncs", headers=viewer)).status_code == 403
        assert (await http.post("/api/v1/tenants/d1/syncs", headers=other)).status_code == 404
        unknown = await http.post(
            "/api/v1/tenants/d1/syncs", json={"source": "nope"}, headers=operator
        )
        assert unknown.status_code == 404
        requested = await http.post("/api/v1/tenants/d1/syncs", json={}, headers=operator)
        assert requested.status_code == 202
        first = UUID(requested.json()["run_id"])
        await wait_for_run(settings, "d1", first)

        runs = (await http.get("/api/v1/tenants/d1/runs", headers=viewer)).json()["items"]
        assert [(r["run_id"], r["status"]) for r in runs] == [(str(first), "completed")]
        run = (await http.get(f"/api/v1/tenants/d1/runs/{first}", headers=viewer)).json()
        assert run["status"] == "completed"
        assert {f["file"] for f in run["files"]} >= {"users.csv", "enrollments.csv"}
        assert run["progress"]["written"] > 100
        # Every record the fetcher published went through the validator and the mapper (their
        # counts are written about once a second: they may trail the run's end by a moment).
        async with asyncio.timeout(15):
            while True:
                got = await http.get(f"/api/v1/tenants/d1/runs/{first}", headers=viewer)
                progress = got.json()["progress"]
                if progress["mapped"] >= sum(progress["published"].values()):
                    break
                await asyncio.sleep(0.3)
        published = sum(progress["published"].values())
        assert published > 100
        assert (progress["fetched"], progress["validated"], progress["mapped"]) == (published,) * 3
        assert progress["stages"]["validator"]["rejected"] == 1  # usr-bad
        assert runs[0]["progress"]["written"] is None  # a finished run's numbers are its report's
        assert (
            await http.get(f"/api/v1/tenants/d1/runs/{uuid4()}", headers=viewer)
        ).status_code == 404
        csv_answer = await http.get(f"/api/v1/tenants/d1/runs/{first}/findings.csv", headers=viewer)
        assert csv_answer.headers["content-type"].startswith("text/csv")
        assert csv_answer.text.splitlines()[0] == (
            "severity,code,file,row,column,value,message,entity,sourced_id,rejected,stage"
        )
        assert len(csv_answer.text.splitlines()) - 1 == await db.fetchval(
            "SELECT count(*) FROM findings WHERE run_id = $1", first
        )
        missing_csv = await http.get(
            f"/api/v1/tenants/d1/runs/{uuid4()}/findings.csv", headers=viewer
        )
        assert missing_csv.status_code == 404
        page = (
            await http.get(f"/api/v1/tenants/d1/runs/{first}/rejections", headers=viewer)
        ).json()
        assert [(r["sourced_id"], r["file"]) for r in page["items"]] == [("usr-bad", "users.csv")]
        assert page["next"] is None
        rejected_csv = await http.get(
            f"/api/v1/tenants/d1/runs/{first}/rejections.csv", headers=viewer
        )
        lines = rejected_csv.text.splitlines()
        assert lines[0] == "stage,entity,sourced_id,file,row,reasons"
        assert len(lines) == 2
        assert lines[1].startswith("validator,users,usr-bad,users.csv,")
        enrollments = await db.fetchval(
            "SELECT count(*) FROM enrollments WHERE tenant_id = 'd1' AND archived_at IS NULL"
        )
        assert enrollments > 100

        bundle = zipped(
            without_enrollments(tmp_path / "bundle", tmp_path / "b2"), tmp_path / "b2.zip"
        )
        with bundle.open("rb") as f:
            sent = await http.post("/api/v1/tenants/d1/uploads", headers=operator,
                                   files={"bundle": ("b2.zip", f, "application/zip")})  # fmt: skip
        assert sent.status_code == 202, sent.text
        held = UUID(sent.json()["run_id"])
        await wait_for_run(settings, "d1", held)
        not_zip = await http.post("/api/v1/tenants/d1/uploads", headers=operator,
                                  files={"bundle": ("x.zip", b"not a zip", "application/zip")})  # fmt: skip
        assert not_zip.status_code == 422

        one = (await http.get("/api/v1/tenants/d1/runs?limit=1", headers=viewer)).json()
        assert [r["run_id"] for r in one["items"]] == [str(held)]
        older = await http.get(
            f"/api/v1/tenants/d1/runs?limit=1&before={one['next']}", headers=viewer
        )
        assert [r["run_id"] for r in older.json()["items"]] == [str(first)]
        assert older.json()["next"] is None
        holds = (await http.get("/api/v1/tenants/d1/holds", headers=viewer)).json()["items"]
        assert [h["run_id"] for h in holds] == [str(held)]
        page1 = (
            await http.get("/api/v1/tenants/d1/holds?everything=true&limit=1", headers=viewer)
        ).json()
        page2 = await http.get(f"/api/v1/tenants/d1/holds?everything=true&before={page1['next']}",
                               headers=viewer)  # fmt: skip
        assert [h["run_id"] for h in page1["items"] + page2.json()["items"]] == [
            str(held),
            str(first),
        ]
        preview = (await http.get(f"/api/v1/tenants/d1/holds/{held}", headers=viewer)).json()
        assert preview["status"] == "held"
        assert preview["would_archive"]["enrollments"]["archive"] == enrollments
        assert len(preview["would_archive"]["enrollments"]["sample"]) == 20
        by_school = preview["would_archive"]["enrollments"]["by_school"]
        assert sum(by_school.values()) == enrollments
        schools = {r["sourced_id"] for r in await db.fetch(
            "SELECT sourced_id FROM orgs WHERE tenant_id = 'd1' AND org_type = 'school'"
        )}  # fmt: skip
        assert set(by_school) <= schools
        reason = {"reason": "the district ended last term's classes"}
        assert (await http.post(f"/api/v1/tenants/d1/holds/{held}/approve", json=reason,
                                headers=viewer)).status_code == 403  # fmt: skip
        assert (await http.post(f"/api/v1/tenants/d1/holds/{uuid4()}/approve", json=reason,
                                headers=operator)).status_code == 404  # fmt: skip
        assert (await http.post(f"/api/v1/tenants/d1/holds/{first}/approve", json=reason,
                                headers=operator)).status_code == 409  # not held  # fmt: skip
        approved = await http.post(
            f"/api/v1/tenants/d1/holds/{held}/approve", json=reason, headers=operator
        )
        assert approved.status_code == 202
        again = await http.post(
            f"/api/v1/tenants/d1/holds/{held}/discard", json=reason, headers=operator
        )
        assert again.status_code == 409
        async with asyncio.timeout(60):
            while await db.fetchval(
                "SELECT count(*) FROM enrollments WHERE tenant_id = 'd1' AND archived_at IS NULL"
            ):
                await asyncio.sleep(0.2)

    decided = await db.fetchrow(
        "SELECT actor, label, reason FROM operator_audit WHERE run_id = $1 AND action = 'hold_approve'",
        held,
    )
    assert decided["actor"] == await db.fetchval("SELECT session_user")
    assert decided["label"].startswith("api token test-operator")
    assert decided["reason"] == reason["reason"]
    actions = [r["action"] for r in await db.fetch("SELECT action FROM api_audit ORDER BY id")]
    assert actions == ["tenant_created", "sync", "sync", "hold_approve"]
    async with api(api_settings(settings, no_file, tmp_path / "uploads")) as http:
        trail = (await http.get("/api/v1/audit?limit=3", headers=viewer)).json()
        assert [e["action"] for e in trail["items"]] == ["hold_approve", "sync", "sync"]
        rest = (await http.get(f"/api/v1/audit?before={trail['next']}", headers=viewer)).json()
        assert [e["action"] for e in rest["items"]] == ["tenant_created"]
        assert (await http.get("/api/v1/audit", headers=other)).json()["items"] == []


async def test_the_writer_holds_by_the_threshold_set_through_the_api(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A tenant configured through the API with a loose threshold: its run that ends every
    enrollment is applied, not held by the tenants file's default (0.10)."""
    generate(tmp_path / "bundle", DistrictShape(students=40))
    operator = await token(db, settings, "admin")
    no_file = tmp_path / "no-tenants.toml"
    loose = {"id": "d2", "name": "District 2", "hold_threshold": 1.0,
             "sources": [{"id": "csv", "kind": "csv", "path": str(tmp_path / "bundle")}]}  # fmt: skip
    async with (
        running_pipeline(settings, no_file),
        api(api_settings(settings, no_file, tmp_path / "uploads")) as http,
    ):
        assert (await http.post("/api/v1/tenants", json=loose, headers=operator)).status_code == 201
        first = await http.post("/api/v1/tenants/d2/syncs", headers=operator)
        await wait_for_run(settings, "d2", UUID(first.json()["run_id"]))
        bundle = zipped(
            without_enrollments(tmp_path / "bundle", tmp_path / "b2"), tmp_path / "b2.zip"
        )
        with bundle.open("rb") as f:
            sent = await http.post("/api/v1/tenants/d2/uploads", headers=operator,
                                   files={"bundle": ("b2.zip", f, "application/zip")})  # fmt: skip
        wiped = UUID(sent.json()["run_id"])
        await wait_for_run(settings, "d2", wiped)
    outcome = await db.fetchrow(
        "SELECT status, threshold FROM run_outcomes WHERE run_id = $1", wiped
    )
    assert (outcome["status"], outcome["threshold"]) == ("applied", 1.0)
    assert not await db.fetchval(
        "SELECT count(*) FROM enrollments WHERE tenant_id = 'd2' AND archived_at IS NULL"
    )
