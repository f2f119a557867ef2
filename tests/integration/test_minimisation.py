"""A tenant's field policy holds end to end: nothing dropped or hashed reaches a topic or a table,
re-syncs stay unchanged, and a missing key fails the run with its reason."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.settings import ServiceSettings

from tests.e2e import cli_settings, every_message, sync
from tests.pipeline import running_pipeline

pytestmark = pytest.mark.integration

POLICY = """
[tenants.minimise]
hash_key_env = "D1_PSEUDONYM_KEY"
users = { username = "hash", identifier = "drop" }
demographics = { birthDate = "drop", sex = "drop" }
"""


async def test_dropped_and_hashed_columns_never_leave_the_fetcher(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, DistrictShape(students=40))
    with (bundle / "users.csv").open() as users_csv:
        originals = [(r["username"], r["identifier"]) for r in csv.DictReader(users_csv)]
    tenants = tmp_path / "t.toml"
    tenants.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\n' + POLICY
        + f'\n[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{bundle}"\n'
    )  # fmt: skip
    monkeypatch.setenv("D1_PSEUDONYM_KEY", "a-district-key")
    await sync(settings, tenants, "d1")

    users = await db.fetch("SELECT username, identifier, payload::text AS p FROM users")
    assert len(users) == len(originals)
    assert all(u["username"].startswith("hmac-sha256:") for u in users)
    assert {u["identifier"] for u in users} == {None}
    demographics = await db.fetch("SELECT birth_date, sex FROM demographics")
    assert demographics
    assert {(d["birth_date"], d["sex"]) for d in demographics} == {(None, None)}
    messages = await every_message(settings)
    for username, identifier in originals[:25]:
        assert username.encode() not in messages
        assert f'"{identifier}"'.encode() not in messages
        assert all(username not in u["p"] for u in users)

    # The pseudonyms are stable: a re-sync finds every record unchanged and rewrites nothing.
    written = await db.fetchval("SELECT max(updated_at) FROM users")
    await sync(settings, tenants, "d1")
    assert await db.fetchval("SELECT max(updated_at) FROM users") == written

    monkeypatch.delenv("D1_PSEUDONYM_KEY")
    run_id = await sync_ending(settings, tenants, db)
    reason = await db.fetchval("SELECT fetch_error FROM sync_runs WHERE run_id = $1", run_id)
    assert reason == "environment variable D1_PSEUDONYM_KEY (the tenant's pseudonym key) is not set"


async def sync_ending(settings: ServiceSettings, tenants: Path, db: asyncpg.Connection) -> object:
    """A sync expected to fail: waits for its run to end, whatever its status."""
    async with running_pipeline(settings, tenants):
        command = await request_sync(cli_settings(settings, tenants), "d1", None)
        async with asyncio.timeout(60):
            while await db.fetchval(
                "SELECT status FROM sync_runs WHERE run_id = $1", command.run_id
            ) in (None, "running"):
                await asyncio.sleep(0.2)
    assert (
        await db.fetchval("SELECT status FROM sync_runs WHERE run_id = $1", command.run_id)
        == "failed"
    )
    return command.run_id
