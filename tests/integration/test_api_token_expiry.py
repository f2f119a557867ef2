"""API tokens that expire: made by the CLI with ``--expires-in``, listed with their expiry, and
refused by the API (401 ``token_expired``) once PostgreSQL's clock is past it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from rostersync_libs.settings import ServiceSettings

from tests.api import api, api_settings, token
from tests.cli_process import cli

pytestmark = pytest.mark.integration


async def test_a_token_made_to_expire_works_until_then_and_is_refused_after(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = tmp_path / "t.toml"
    entry = '[[tenants]]\nid = "{0}"\nname = "{0}"\n\n[[tenants.sources]]\nid = "csv"\n'
    tenants.write_text("".join(entry.format(t) + f'kind = "csv"\npath = "{tmp_path}"\n\n'
                               for t in ("a", "b")))  # fmt: skip
    await token(db, settings, "viewer")  # migrates the schema: a token that never expires
    made = await cli(settings, tenants, "api", "token", "create", "--name", "contractor",
                     "--role", "viewer", "--tenant", "a", "--expires-in", "30d")  # fmt: skip
    assert made.code == 0, made
    token_id, secret = re.fullmatch(r"token (\S+) \(viewer\): (rs_\S+)\n", made.out).groups()  # type: ignore[union-attr]
    assert "it expires at " in made.err
    left = await db.fetchval(
        "SELECT expires_at - now() FROM api_tokens WHERE token_id = $1::uuid", token_id
    )
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)
    wrong = await cli(settings, tenants, "api", "token", "create", "--name", "x", "--role",
                      "viewer", "--expires-in", "30x")  # fmt: skip
    assert wrong.code == 2
    assert "a number and m, h, d or w" in wrong.err

    headers = {"Authorization": f"Bearer {secret}"}
    async with api(api_settings(settings, tenants, tmp_path / "uploads")) as http:
        assert (await http.get("/api/v1/tenants/a", headers=headers)).status_code == 200
        assert (await http.get("/api/v1/tenants/b", headers=headers)).status_code == 404
        await db.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second'"
            " WHERE token_id = $1::uuid",
            token_id,
        )
        for tenant in ("a", "b"):  # expired says so, and nothing about either tenant
            refused = await http.get(f"/api/v1/tenants/{tenant}", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "token_expired"
            assert refused.headers["www-authenticate"] == "Bearer"
        unknown = await http.get("/api/v1/tenants/a", headers={"Authorization": "Bearer rs_x"})
        assert unknown.json()["error"]["code"] == "unauthorized"  # not "expired": unknown
        form = (await http.get("/console/sign-in")).text  # and its CSRF cookie
        csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]  # type: ignore[index]
        console = await http.post("/console/sign-in", data={"token": secret,
                                                            "csrf_token": csrf_token})  # fmt: skip
        assert console.status_code == 401
        assert "That token has expired" in console.text

    listed = await cli(settings, tenants, "api", "token", "list")
    line = next(x for x in listed.out.splitlines() if x.startswith(token_id))
    assert "(expired)" in line
    never = next(x for x in listed.out.splitlines() if "test-viewer" in x)
    assert "never" in never
