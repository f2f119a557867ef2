"""Source secrets set through the admin API: write-only, sealed at rest, used by the fetcher.

A OneRoster API source (the bundled server, OAuth 2 client credentials) created through the API
names no environment variable; its client secret is stored with PUT …/secret. The sync lands;
the secret is in no response, no row in clear, and no topic; a wrong secret fails the run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from rostersync_cli.generate import DistrictShape, generate
from rostersync_libs.settings import ServiceSettings
from rostersync_oneroster_server import OneRosterServer

from tests.api import api, api_settings, token
from tests.e2e import every_message
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration
SECRET = "s3cret-only-the-district-knows"


async def test_a_secret_stored_through_the_api_is_used_and_never_shown(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    generate(tmp_path / "bundle", DistrictShape(students=20))
    admin = await token(db, settings, "admin")
    no_file = tmp_path / "none.toml"
    async with (
        OneRosterServer(tmp_path / "bundle", oauth2={"client": SECRET}) as server,
        running_pipeline(settings, no_file),
        api(api_settings(settings, no_file, tmp_path)) as http,
    ):
        oauth2 = {"kind": "oauth2", "token_url": server.token_url, "client_id": "client"}
        source: dict[str, Any] = {"id": "api", "kind": "oneroster-api", "base_url": server.base_url,
                                  "auth": oauth2}  # fmt: skip
        district = {"id": "d1", "name": "D1", "sources": [source]}
        assert (await http.post("/api/v1/tenants", json=district, headers=admin)).status_code == 201
        shown = (await http.get("/api/v1/tenants/d1", headers=admin)).json()
        assert shown["secrets"] == {"api": "missing"}
        tested = (await http.post("/api/v1/tenants/d1/sources/api/test", headers=admin)).json()
        assert tested["ok"] is False
        assert "has no secret" in tested["message"]

        # No secret yet: the run fails and says what to do.
        failed = await http.post("/api/v1/tenants/d1/syncs", headers=admin)
        path = f"/api/v1/tenants/d1/runs/{failed.json()['run_id']}"
        async with asyncio.timeout(60):
            while (answer := await http.get(path, headers=admin)).json().get("status") != "failed":
                await asyncio.sleep(0.2)
        run = answer.json()
        assert "has no secret" in run["detail"]

        put = await http.put("/api/v1/tenants/d1/sources/api/secret", json={"secret": SECRET},
                             headers=admin)  # fmt: skip
        assert put.status_code == 204
        shown = await http.get("/api/v1/tenants/d1", headers=admin)
        assert shown.json()["secrets"] == {"api": "stored"}
        tested = (await http.post("/api/v1/tenants/d1/sources/api/test", headers=admin)).json()
        assert tested["ok"] is True, tested
        assert "GET /orgs answered" in tested["message"]
        assert SECRET not in str(tested)
        wrong = {**source, "id": "wrong", "auth": {**oauth2, "client_id": "nobody"}}
        await http.put("/api/v1/tenants/d1/sources/wrong", json=wrong, headers=admin)
        await http.put(
            "/api/v1/tenants/d1/sources/wrong/secret", json={"secret": "x"}, headers=admin
        )
        refused = (await http.post("/api/v1/tenants/d1/sources/wrong/test", headers=admin)).json()
        assert refused["ok"] is False
        folder = {"id": "files", "kind": "csv", "path": str(tmp_path / "nowhere")}
        await http.put("/api/v1/tenants/d1/sources/files", json=folder, headers=admin)
        missing = (await http.post("/api/v1/tenants/d1/sources/files/test", headers=admin)).json()
        assert (missing["ok"], "does not exist" in missing["message"]) == (False, True)
        folder["path"] = str(tmp_path / "bundle")
        await http.put("/api/v1/tenants/d1/sources/files", json=folder, headers=admin)
        found = (await http.post("/api/v1/tenants/d1/sources/files/test", headers=admin)).json()
        assert found["ok"] is True, found
        assert SECRET not in shown.text
        synced = await http.post("/api/v1/tenants/d1/syncs", headers=admin)
        await wait_for_run(settings, "d1", UUID(synced.json()["run_id"]))
        run = (
            await http.get(f"/api/v1/tenants/d1/runs/{synced.json()['run_id']}", headers=admin)
        ).json()
        assert run["status"] == "completed", run
        assert (await http.put("/api/v1/tenants/d1/sources/nope/secret", json={"secret": "x"},
                               headers=admin)).status_code == 404  # fmt: skip

    assert await db.fetchval("SELECT count(*) FROM users WHERE tenant_id = 'd1'") > 20
    sealed = await db.fetchval("SELECT sealed FROM source_secrets WHERE tenant_id = 'd1'")
    assert SECRET.encode() not in bytes(sealed)
    for table in ("tenant_configs", "api_audit", "operator_audit"):
        assert SECRET not in str(await db.fetch(f"SELECT * FROM {table}")), table
    assert SECRET.encode() not in await every_message(settings)
