"""The bundled OneRoster server changing over time and misbehaving, through the four services on
real Kafka and PostgreSQL: deltas bring exactly the server's changes, hard deletes wait for a full
sync's sweep, and 429/500/slow/dropped/expired-token answers are retried to the same rows as a
clean load."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from uuid import UUID

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import request_sync
from rostersync_libs.commands import SyncRequested
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer

from tests import districts
from tests.bundles import write_bundle
from tests.e2e import cli_settings, ids, send_unaudited
from tests.integration.test_rest_end_to_end import snapshot
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration

SCOPES_1_1 = (
    'scopes = ["https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly",'
    ' "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly"]'
)


def api_tenant(tenant: str, server: OneRosterServer, auth: str, **extra: Any) -> str:
    """One tenant whose only source is the server's 1.1 API."""
    options = "".join(f"{k} = {v}\n" for k, v in extra.items())
    return (
        f'[[tenants]]\nid = "{tenant}"\nname = "{tenant}"\nhold_threshold = 1.0\n'
        '[[tenants.sources]]\nid = "api"\nkind = "oneroster-api"\n'
        f'base_url = "{server.base_url}"\nversion = "1.1"\n{auth}\n{options}'
    )


def oauth1() -> str:
    return 'auth = { kind = "oauth1", key = "key", secret_env = "ROSTERSYNC_TEST_O1" }'


def oauth2(server: OneRosterServer) -> str:
    return (
        f'auth = {{ kind = "oauth2", token_url = "{server.token_url}", client_id = "client",'
        f' secret_env = "ROSTERSYNC_TEST_O2", {SCOPES_1_1} }}'
    )


async def request(settings: ServiceSettings, tenant: str, *, full: bool = False) -> UUID:
    command = SyncRequested(tenant=tenant, source="api", full=full)
    await send_unaudited(settings, command)
    return command.run_id


async def sync(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tenant: str,
    *,
    full: bool = False,
    timeout: float = 90,
) -> UUID:
    """One requested run of the tenant's API source, completed by the writer, with no errors."""
    run_id = await request(settings, tenant, full=full)
    await wait_for_run(settings, tenant, run_id, timeout=timeout)
    errors = await db.fetch(
        "SELECT code, file, row FROM findings WHERE run_id = $1 AND severity = 'error'", run_id
    )
    assert errors == [], (tenant, errors)
    return run_id


async def published(db: asyncpg.Connection, tenant: str, run_id: UUID) -> dict[str, int]:
    """What a run published, by collection, leaving out the empty ones."""
    raw = await db.fetchval(
        "SELECT published_counts FROM sync_runs WHERE tenant_id = $1 AND run_id = $2",
        tenant,
        run_id,
    )
    counts: dict[str, int] = orjson.loads(raw) if isinstance(raw, str | bytes) else dict(raw)
    return {k: v for k, v in counts.items() if v}


def user_filters(server: OneRosterServer, since: int) -> list[str]:
    """The filters of the /users requests logged from position ``since`` on."""
    found = []
    for record in server.request_log[since:]:
        if record.path.endswith("/users"):
            query = dict(p.split("=", 1) for p in record.query.split("&") if "=" in p)
            found.append(unquote(query.get("filter", "")))
    return found


async def test_deltas_bring_exactly_the_changes_and_a_full_sync_sweeps_hard_deletes(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    async with OneRosterServer(bundle, oauth1={"key": "secret"}) as server:
        tenants = tmp_path / "t.toml"
        # No overlap: the bulk rows all carry the load time, which an overlap would bring back.
        tenants.write_text(api_tenant("d1", server, oauth1(), page_size=2, delta_overlap_seconds=0))
        async with running_pipeline(settings, tenants, inbox_poll_seconds=0.5):
            full = await sync(settings, db, "d1")
            assert "" in user_filters(server, 0)  # the first run reads everything
            before = await snapshot(db, "d1")
            assert await ids(db, "enrollments") == {"e1", "e2", "e3"}

            # 1. a rename, a deleted enrollment, a new enrollment
            sam = server.data.get("users", "u-s1")
            assert sam is not None
            server.data.upsert("users", {**sam.row, "givenName": "Samuel"})
            server.data.touch("users", "u-s1")
            server.data.mark_deleted("enrollments", "e2")
            server.data.upsert(
                "enrollments",
                {"sourcedId": "e4", "classSourcedId": "k-home", "schoolSourcedId": "s2",
                 "userSourcedId": "u-s1", "role": "student", "primary": "false"},
            )  # fmt: skip
            logged = len(server.request_log)
            delta = await sync(settings, db, "d1")
            filters = user_filters(server, logged)
            assert filters
            assert all(f.startswith("dateLastModified>'") for f in filters), filters
            assert await published(db, "d1", delta) == {"/users": 1, "/enrollments": 2}
            after = await snapshot(db, "d1")
            assert after["users"] - before["users"] == {("u-s1", "Samuel", "Study", "sam")}
            assert before["users"] - after["users"] == {("u-s1", "Sam", "Study", "sam")}
            assert before["enrollments"] - after["enrollments"] == {("e2", "student", False)}
            assert after["enrollments"] - before["enrollments"] == {("e4", "student", False)}
            for table in ("orgs", "academic_sessions", "courses", "classes", "demographics"):
                assert after[table] == before[table], table
            archived = await db.fetchval(
                "SELECT archived_at IS NOT NULL FROM enrollments WHERE sourced_id = 'e2'"
            )
            assert archived

            # 2. a hard delete: invisible to a delta, archived by a full sync's sweep
            server.data.hard_delete("users", "u-p1")
            quiet = await sync(settings, db, "d1")
            assert await published(db, "d1", quiet) == {}
            assert "u-p1" in await ids(db, "users")
            logged = len(server.request_log)
            reconcile = await sync(settings, db, "d1", full=True)
            assert "" in user_filters(server, logged)  # read whole, no filter
            assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2"}
            assert await ids(db, "enrollments") == {"e1", "e3", "e4"}
            assert full != reconcile


async def test_faults_are_retried_to_the_rows_of_a_clean_load(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    monkeypatch.setenv("ROSTERSYNC_TEST_O2", "s3cret")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    async with OneRosterServer(
        bundle, oauth1={"key": "secret"}, oauth2={"client": "s3cret"}
    ) as server:
        # A slow page waits 1.5 s: above a page's normal latency, below the 5 s timeout.
        common: dict[str, Any] = {"page_size": 2, "timeout_seconds": 5, "max_attempts": 6}
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            api_tenant("clean", server, oauth1(), **common)
            + api_tenant("f1", server, oauth1(), **common)
            + api_tenant("f2", server, oauth2(server), **common)
        )
        async with running_pipeline(settings, tenants, inbox_poll_seconds=0.5):
            await sync(settings, db, "clean")
            clean = await snapshot(db, "clean")
            assert clean["users"]

            # OAuth1: 429 x2 (Retry-After 1), 500 x2, a slow page, 2 dropped connections.
            server.reset_counts()
            server.faults.add("429", 2, path_contains="/users", retry_after=1)
            server.faults.add("500", 2, path_contains="/enrollments")
            server.faults.add("slow", 1, path_contains="/classes", delay=1.5)
            server.faults.add("drop", 2, path_contains="/courses")
            logged = len(server.request_log)
            await sync(settings, db, "f1")
            assert server.faults.pending == 0
            assert server.faults.injected == {"429": 2, "500": 2, "slow": 1, "drop": 2}
            log = server.request_log[logged:]
            assert [r.status for r in log if r.fault == "429"] == [429, 429]
            assert [r.status for r in log if r.fault == "500"] == [500, 500]
            assert [r.status for r in log if r.fault == "drop"] == [None, None]
            assert [r.status for r in log if r.fault == "slow"] == [200]  # waited for, no retry
            # every faulted first page was asked again and answered
            for path in ("/users", "/enrollments", "/courses", "/classes"):
                first_pages = [
                    r for r in log if r.path.endswith(path) and "offset=0" in r.query.split("&")
                ]
                assert len(first_pages) > 1 or path == "/classes", (path, first_pages)
                assert first_pages[-1].status == 200, path
            users_path = server.v1p1_url.removeprefix(server.base_url) + "/users"
            served = server.requests_served[users_path]
            assert served == 2 + sum(1 for r in log if r.path == users_path and r.status == 200)
            assert await snapshot(db, "f1") == clean

            # OAuth2: the tokens expire while the run is under way; 429 and a drop on the way
            server.faults.add("slow", 3, path_contains="/orgs", delay=0.5)
            server.faults.add("429", 1, path_contains="/courses", retry_after=1)
            server.faults.add("drop", 2, path_contains="/users")
            logged = len(server.request_log)
            run_id = await request(settings, "f2")
            async with asyncio.timeout(30):
                while not any(r.path.endswith("/orgs") for r in server.request_log[logged:]):
                    await asyncio.sleep(0.05)
            assert server.tokens is not None
            server.tokens.expire_all()
            await wait_for_run(settings, "f2", run_id, timeout=90)
            log = server.request_log[logged:]
            assert [r.status for r in log if r.path == "/token"].count(200) >= 2, log
            assert 401 in [r.status for r in log], log
            assert server.faults.pending == 0
            assert await snapshot(db, "f2") == clean
    for tenant in ("clean", "f1", "f2"):
        duplicates = await db.fetchval(
            "SELECT count(*) - count(DISTINCT sourced_id) FROM users WHERE tenant_id = $1", tenant
        )
        assert duplicates == 0


async def test_a_server_accepting_only_hmac_sha1_is_read_with_signature_method_hmac_sha1(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    bundle = write_bundle(tmp_path / "bundle", districts.bundle_1_1())
    sha1 = (
        'auth = { kind = "oauth1", key = "key", secret_env = "ROSTERSYNC_TEST_O1",'
        ' signature_method = "HMAC-SHA1" }'
    )
    async with OneRosterServer(
        bundle, oauth1={"key": "secret"}, oauth1_methods=("HMAC-SHA1",)
    ) as server:
        tenants = tmp_path / "t.toml"
        tenants.write_text(
            api_tenant("sha1", server, sha1) + api_tenant("sha256", server, oauth1())
        )
        async with running_pipeline(settings, tenants, inbox_poll_seconds=0.5):
            await sync(settings, db, "sha1", full=True)
            refused = await request(settings, "sha256", full=True)
            async with asyncio.timeout(60):
                while (
                    status := await db.fetchval(
                        "SELECT status FROM sync_runs WHERE run_id = $1", refused
                    )
                ) in (None, "running"):
                    await asyncio.sleep(0.2)
    assert await ids(db, "users", "sha1") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    assert status == "failed"
    reason = await db.fetchval("SELECT fetch_error FROM sync_runs WHERE run_id = $1", refused)
    assert "HTTP 401" in reason
    assert "unsupported oauth_signature_method 'HMAC-SHA256'" in reason


HASHED = ("orgs", "academic_sessions", "courses", "classes", "users", "enrollments", "demographics")


async def written(db: asyncpg.Connection, tenant: str) -> dict[str, object]:
    """Per table, when a row of the tenant last changed and its content hashes."""
    found: dict[str, object] = {}
    for table in HASHED:
        found[table] = await db.fetchval(
            f"SELECT max(updated_at) FROM {table} WHERE tenant_id = $1", tenant
        )
    return found


async def hashes(db: asyncpg.Connection, tenant: str) -> dict[tuple[str, str], str]:
    found = {}
    for table in HASHED:
        rows = await db.fetch(
            f"SELECT sourced_id, content_hash FROM {table} WHERE tenant_id = $1", tenant
        )
        found.update({(table, r["sourced_id"]): r["content_hash"] for r in rows})
    return found


async def test_unchanged_data_read_full_delta_full_or_from_csv_rewrites_nothing(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bulk payloads carry no status or dateLastModified, delta payloads do: the content hash
    covers the roster content only, so the framing never reads as a change."""
    monkeypatch.setenv("ROSTERSYNC_TEST_O1", "secret")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    async with OneRosterServer(bundle, oauth1={"key": "secret"}) as server:
        tenants = tmp_path / "t.toml"
        # An overlap reaching back past the load: every delta reads every record again.
        tenants.write_text(
            api_tenant("d1", server, oauth1(), delta_overlap_seconds=10**8)
            + f'[[tenants]]\nid = "csv"\nname = "C"\n[[tenants.sources]]\nid = "csv"\n'
            f'path = "{bundle}"\n'
        )
        async with running_pipeline(settings, tenants, inbox_poll_seconds=0.5):
            await sync(settings, db, "d1", full=True)
            loaded = await written(db, "d1")
            delta = await sync(settings, db, "d1")
            assert "/users" in await published(db, "d1", delta)  # the delta read them again
            assert await written(db, "d1") == loaded
            await sync(settings, db, "d1", full=True)
            assert await written(db, "d1") == loaded
            # The same records from the bundle the server serves: the same hashes.
            command = await request_sync(cli_settings(settings, tenants), "csv", None)
            await wait_for_run(settings, "csv", command.run_id)
    from_api, from_csv = await hashes(db, "d1"), await hashes(db, "csv")
    assert len(from_api) > 10
    assert from_api == from_csv


async def test_a_source_without_the_demographics_scope_syncs_the_rest_and_archives_nothing(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERSYNC_TEST_O2", "s3cret")
    bundle = write_bundle(tmp_path / "b", districts.bundle_1_1())
    core_only = (
        'auth = { kind = "oauth2", token_url = "{url}", client_id = "client",'
        ' secret_env = "ROSTERSYNC_TEST_O2",'
        ' scopes = ["https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"] }'
    )
    async with OneRosterServer(bundle, oauth2={"client": "s3cret"}) as server:
        tenants = tmp_path / "t.toml"
        tenants.write_text(api_tenant("d1", server, oauth2(server)))
        async with running_pipeline(settings, tenants, inbox_poll_seconds=0.2):
            await sync(settings, db, "d1", full=True)
            demographics = await ids(db, "demographics")
            assert demographics
            # The district withdraws the demographics scope: 403 insufficient_scope on it.
            tenants.write_text(
                api_tenant("d1", server, core_only.replace("{url}", server.token_url))
                + api_tenant(
                    "d2", server, oauth2(server),
                    collections='["orgs", "academicSessions", "courses", "classes", "users",'
                    ' "enrollments"]',
                )
            )  # fmt: skip
            await asyncio.sleep(1)  # the fetcher follows the tenants file
            since = len(server.request_log)
            refused = await sync(settings, db, "d1", full=True)
            not_shared = await sync(settings, db, "d2", full=True)
    assert await ids(db, "demographics") == demographics  # nothing archived
    assert await ids(db, "users") == {"u-t1", "u-s1", "u-s2", "u-p1"}
    findings = await db.fetch(
        "SELECT code, severity, file, message FROM findings WHERE run_id = $1", refused
    )
    assert [(f["code"], f["severity"], f["file"]) for f in findings] == [
        ("collection_forbidden", "warning", "/demographics")
    ]
    assert "GET /demographics" in findings[0]["message"]
    assert "HTTP 403" in findings[0]["message"]
    outcome = await db.fetchval("SELECT bulk_entities FROM run_outcomes WHERE run_id = $1", refused)
    assert "demographics" not in outcome
    assert "users" in outcome
    # A source that does not list demographics never asks for them, and reports nothing.
    d2_paths = [r.path for r in server.request_log[since:] if "/demographics" in r.path]
    assert len(d2_paths) == 1  # d1's refused request only
    assert await db.fetchval("SELECT count(*) FROM findings WHERE run_id = $1", not_shared) == 0
    assert await ids(db, "demographics", "d2") == set()
    assert await ids(db, "users", "d2") == {"u-t1", "u-s1", "u-s2", "u-p1"}
