"""Requests per token: past its burst a token gets 429 rate_limited with Retry-After; another
token (another tenant's) is not slowed by it, and the first is served again after the wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from rostersync_libs.settings import ServiceSettings

from tests.api import api, api_settings, token

pytestmark = pytest.mark.integration


async def test_a_token_past_its_burst_waits_and_other_tokens_do_not(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = tmp_path / "t.toml"
    entry = '[[tenants]]\nid = "{0}"\nname = "{0}"\n\n[[tenants.sources]]\nid = "csv"\n'
    tenants.write_text("".join(entry.format(t) + f'kind = "csv"\npath = "{tmp_path}"\n\n'
                               for t in ("a", "b")))  # fmt: skip
    busy = await token(db, settings, "viewer", ["a"])
    calm = await token(db, settings, "viewer", ["b"])
    limited = api_settings(settings, tenants, tmp_path).model_copy(
        update={"api_rate_per_second": 0.25, "api_rate_burst": 3}  # then one request each 4 s
    )
    async with api(limited) as http:
        answers = [await http.get("/api/v1/tenants/a", headers=busy) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 4
        assert (await http.get("/api/v1/tenants/b", headers=calm)).status_code == 200
        assert (await http.get("/api/v1/tenants/a", headers=calm)).status_code == 404  # scoped
        await asyncio.sleep(int(refused.headers["retry-after"]))
        assert (await http.get("/api/v1/tenants/a", headers=busy)).status_code == 200
        assert (await http.get("/healthz")).status_code == 200  # no token: not counted
