"""Admin API: tokens, roles and tenant scopes; tenants and sources created and changed, audited."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import asyncpg
import pytest
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate

from tests.api import api, api_settings, token
from tests.bundles import write_tenants
from tests.cli_process import cli

pytestmark = pytest.mark.integration


def district(tenant_id: str, path: Path) -> dict[str, object]:
    return {
        "id": tenant_id,
        "name": f"District {tenant_id}",
        "sources": [{"id": "csv", "kind": "csv", "path": str(path)}],
    }


async def test_every_request_needs_a_valid_token_and_a_role_that_may(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    viewer = await token(db, settings, "viewer")
    admin = await token(db, settings, "admin")
    async with api(api_settings(settings, tmp_path / "none.toml", tmp_path)) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"postgresql": "ok", "kafka": "ok"}

        missing = await http.get("/api/v1/tenants")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        forged = await http.get("/api/v1/tenants", headers={"Authorization": "Bearer rs_x"})
        assert forged.status_code == 401
        body = district("d1", tmp_path)
        refused = await http.post("/api/v1/tenants", json=body, headers=viewer)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert (await http.post("/api/v1/tenants", json=body, headers=admin)).status_code == 201
        listed = await http.get("/api/v1/tenants", headers=viewer)
        assert [t["id"] for t in listed.json()["items"]] == ["d1"]
        # Requests counted by route template and status, never by tenant.
        exposed = (await http.get("/metrics")).text
        assert re.search(
            r'rostersync_api_requests_total\{method="GET",route="/api/v1/tenants",status="401"\} [1-9]',
            exposed,
        )
        # No label of the API's requests carries a tenant id (the process's registry also holds
        # the in-process services' series of other tests: only the API's lines are looked at).
        requests = [x for x in exposed.splitlines() if x.startswith("rostersync_api_requests")]
        assert requests
        assert not [x for x in requests if "d1" in x]
    revoked = await db.execute("UPDATE api_tokens SET revoked_at = now() WHERE name = 'test-admin'")
    assert revoked == "UPDATE 1"
    async with api(api_settings(settings, tmp_path / "none.toml", tmp_path)) as http:
        assert (await http.get("/api/v1/tenants", headers=admin)).status_code == 401


async def test_a_token_limited_to_a_tenant_sees_nothing_of_another(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    admin = await token(db, settings, "admin")
    only_a = await token(db, settings, "admin", ["a"])
    async with api(api_settings(settings, tmp_path / "none.toml", tmp_path)) as http:
        for tenant in ("a", "b"):
            created = await http.post(
                "/api/v1/tenants", json=district(tenant, tmp_path), headers=admin
            )
            assert created.status_code == 201
        listed = await http.get("/api/v1/tenants", headers=only_a)
        assert [t["id"] for t in listed.json()["items"]] == ["a"]
        # The same answer for b as for a tenant that does not exist: no existence leak.
        for path in ("/api/v1/tenants/b", "/api/v1/tenants/nobody"):
            answer = await http.get(path, headers=only_a)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "not_found"
        for change in (
            http.put("/api/v1/tenants/b", json=district("b", tmp_path), headers=only_a),
            http.delete("/api/v1/tenants/b", headers=only_a),
            http.post("/api/v1/tenants/b/pause", headers=only_a),
            http.post("/api/v1/tenants", json=district("c", tmp_path), headers=only_a),
        ):
            assert (await change).status_code == 404
        assert (await http.get("/api/v1/tenants/b", headers=admin)).status_code == 200
    assert await db.fetchval("SELECT count(*) FROM tenant_configs") == 2


async def test_tenants_and_sources_are_validated_changed_and_audited(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    admin = await token(db, settings, "admin")
    operator = await token(db, settings, "operator")
    tenants_file = write_tenants(tmp_path / "t.toml", "from-file", tmp_path)
    async with api(api_settings(settings, tenants_file, tmp_path)) as http:
        bad = {**district("d1", tmp_path), "hold_threshold": 2}
        answer = await http.post("/api/v1/tenants", json=bad, headers=admin)
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "invalid_request"
        assert "hold_threshold" in answer.json()["error"]["message"]
        relative = district("d1", Path("bundles/d1"))
        answer = await http.post("/api/v1/tenants", json=relative, headers=admin)
        assert answer.status_code == 422
        assert "sources.csv.path: must be an absolute path" in answer.json()["error"]["message"]
        shadow = await http.post(
            "/api/v1/tenants", json=district("from-file", tmp_path), headers=admin
        )
        assert shadow.status_code == 409
        assert "tenants file" in shadow.json()["error"]["message"]

        assert (
            await http.post("/api/v1/tenants", json=district("d1", tmp_path), headers=admin)
        ).status_code == 201
        again = await http.post("/api/v1/tenants", json=district("d1", tmp_path), headers=admin)
        assert again.status_code == 409
        inbox = {"id": "drop", "kind": "inbox", "path": str(tmp_path / "inbox")}
        added = await http.put("/api/v1/tenants/d1/sources/drop", json=inbox, headers=admin)
        assert [s["id"] for s in added.json()["config"]["sources"]] == ["csv", "drop"]
        removed = await http.delete("/api/v1/tenants/d1/sources/csv", headers=admin)
        assert [s["id"] for s in removed.json()["config"]["sources"]] == ["drop"]
        last = await http.delete("/api/v1/tenants/d1/sources/drop", headers=admin)
        assert last.status_code == 409
        assert (await http.post("/api/v1/tenants/d1/pause", headers=operator)).json()["paused"]
        shown = (await http.get("/api/v1/tenants", headers=operator)).json()["items"]
        assert {(t["id"], t["managed_by"], t["paused"]) for t in shown} == {
            ("d1", "api", True),
            ("from-file", "file", False),
        }
        assert (await http.delete("/api/v1/tenants/d1", headers=operator)).status_code == 403
        assert (await http.delete("/api/v1/tenants/d1", headers=admin)).status_code == 204
        assert (await http.get("/api/v1/tenants/d1", headers=admin)).status_code == 404

    trail = await db.fetch("SELECT token_name, action, before, after FROM api_audit ORDER BY id")
    assert [(r["token_name"], r["action"]) for r in trail] == [
        ("test-admin", "tenant_created"),
        ("test-admin", "source_set"),
        ("test-admin", "source_deleted"),
        ("test-operator", "tenant_paused"),
        ("test-admin", "tenant_deleted"),
    ]
    assert trail[1]["before"] is not None
    assert trail[4]["after"] is None
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("DELETE FROM api_audit")


async def test_the_cli_makes_lists_and_revokes_tokens_and_the_cli_syncs_an_api_tenant(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    no_file = tmp_path / "none.toml"
    made = await cli(settings, no_file, "api", "token", "create", "--name", "ops", "--role",
                     "operator", "--tenant", "d1")  # fmt: skip
    assert made.code == 0, made
    token_id, secret = re.fullmatch(r"token (\S+) \(operator\): (rs_\S+)\n", made.out).groups()  # type: ignore[union-attr]
    stored = await db.fetchrow("SELECT role, tenants, token_hash FROM api_tokens")
    assert (stored["role"], stored["tenants"]) == ("operator", ["d1"])
    assert secret.encode() not in bytes(stored["token_hash"])  # only its hash is kept
    listed = await cli(settings, no_file, "api", "token", "list")
    assert token_id in listed.out
    assert secret not in listed.out
    headers = {"Authorization": f"Bearer {secret}"}
    admin = await token(db, settings, "admin")
    async with api(api_settings(settings, no_file, tmp_path)) as http:
        await http.post("/api/v1/tenants", json=district("d1", tmp_path), headers=admin)
        assert (await http.get("/api/v1/tenants/d1", headers=headers)).status_code == 200
        # The CLI knows the API's tenants too: a sync of d1 is audited and sent.
        sent = await cli(settings, no_file, "sync", "d1")
        assert sent.code == 0, sent
        assert "sync requested: tenant d1" in sent.out
        assert (await cli(settings, no_file, "api", "token", "revoke", token_id)).code == 0
        assert (await http.get("/api/v1/tenants/d1", headers=headers)).status_code == 401
    assert (await cli(settings, no_file, "api", "token", "revoke", token_id)).code == 2


async def test_a_tenants_file_is_imported_into_the_api_and_exported_back(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    (tmp_path / "bundles" / "d1").mkdir(parents=True)
    tenants = write_tenants(tmp_path / "t.toml", "d1", Path("bundles/d1"))  # relative path
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tenants]]\nid = "d2"\nname = "x"\nhold_threshold = 3\n')
    refused = await cli(settings, tmp_path / "none.toml", "tenants", "import", str(bad))
    assert refused.code == 2
    assert f"{bad}:4: tenants[0] (d2) hold_threshold: Input should be less than" in refused.err
    assert "Traceback" not in refused.err
    await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.db_schema}"')
    await migrate(db)
    assert not await db.fetchval("SELECT count(*) FROM tenant_configs")

    done = await cli(settings, tmp_path / "none.toml", "tenants", "import", str(tenants))
    assert done.code == 0, done
    assert done.out == "imported 1 tenant(s): d1\n"
    admin = await token(db, settings, "admin")
    async with api(api_settings(settings, tmp_path / "none.toml", tmp_path)) as http:
        shown = (await http.get("/api/v1/tenants/d1", headers=admin)).json()
    assert shown["managed_by"] == "api"
    assert shown["config"]["sources"][0]["path"] == str((tmp_path / "bundles" / "d1").resolve())
    exported = await cli(settings, tmp_path / "none.toml", "tenants", "export")
    assert exported.code == 0, exported
    again = tmp_path / "exported.toml"
    again.write_text(exported.out)
    assert (await cli(settings, tmp_path / "none.toml", "tenants", "check", str(again))).code == 0
    assert tomllib.loads(exported.out)["tenants"][0]["id"] == "d1"
    trail = await db.fetch("SELECT token_name, action FROM api_audit")
    assert [r["action"] for r in trail] == ["tenant_imported"]
    assert trail[0]["token_name"].startswith("cli (")
