"""Nothing of the host reaches the database, the topics or the logs, whatever a bundle links to.

Secrets are planted in the services' environment; hostile bundles (a file, a manifest, an inbox
drop and a zip member that are symbolic links to /proc/self/environ or /etc/passwd) are synced
by the four services as processes; then every row of every table of the deployment's schema,
every message of every topic and every line the services logged are searched for the secrets and
for the first line of /etc/passwd. The runs themselves must end, and say why.
"""

from __future__ import annotations

import asyncio
import shutil
import zipfile
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import SERVICES, stop_all
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.settings import ServiceSettings

from tests.e2e import cli_settings, every_message
from tests.pipeline import start_logged

pytestmark = pytest.mark.integration

PASSWD_FIRST_LINE = Path("/etc/passwd").read_text().splitlines()[0]


def hostile_bundles(tmp_path: Path) -> dict[str, Path]:
    """Each tenant's bundle, each with one way to point at the host."""
    clean = tmp_path / "clean"
    generate(clean, DistrictShape(students=30))
    bundles: dict[str, Path] = {}

    linked_file = tmp_path / "linked_file"
    shutil.copytree(clean, linked_file)
    (linked_file / "orgs.csv").unlink()
    (linked_file / "orgs.csv").symlink_to("/proc/self/environ")
    bundles["linked-file"] = linked_file

    linked_manifest = tmp_path / "linked_manifest"
    shutil.copytree(clean, linked_manifest)
    (linked_manifest / "manifest.csv").unlink()
    (linked_manifest / "manifest.csv").symlink_to("/etc/passwd")
    bundles["linked-manifest"] = linked_manifest

    linked_member = tmp_path / "linked_member.zip"
    with zipfile.ZipFile(linked_member, "w") as zf:
        for path in sorted(clean.iterdir()):
            if path.name != "users.csv":
                zf.write(path, path.name)
        link = zipfile.ZipInfo("users.csv")
        link.external_attr = 0o120777 << 16  # a symbolic link, as `zip --symlinks` stores it
        zf.writestr(link, "/proc/self/environ")
    bundles["linked-member"] = linked_member
    return bundles


def tenants_file(tmp_path: Path, bundles: dict[str, Path], inbox: Path) -> Path:
    toml = "".join(
        f'[[tenants]]\nid = "{tenant}"\nname = "{tenant}"\n'
        f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{path}"\n\n'
        for tenant, path in bundles.items()
    )
    toml += (
        '[[tenants]]\nid = "linked-drop"\nname = "drop"\n[[tenants.sources]]\nid = "sftp"\n'
        f'kind = "inbox"\npath = "{inbox}"\nsettle_seconds = 0\n'
    )
    path = tmp_path / "tenants.toml"
    path.write_text(toml)
    return path


async def ended(db: asyncpg.Connection, tenant: str, run_id: UUID | None = None) -> str | None:
    """The status of the tenant's run (its only run when no id is given), once it has ended."""
    try:
        status: str | None = await db.fetchval(
            "SELECT status FROM sync_runs WHERE tenant_id = $1 AND ($2::uuid IS NULL"
            " OR run_id = $2) AND status <> 'running' LIMIT 1",
            tenant,
            run_id,
        )
    except asyncpg.UndefinedTableError:
        return None
    return status


async def every_row(db: asyncpg.Connection, schema: str) -> str:
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
    )
    texts: list[str] = []
    for table in tables:
        rows = await db.fetch(f'SELECT t::text AS row FROM "{schema}"."{table[0]}" t')
        texts.extend(r["row"] for r in rows)
    return "\n".join(texts)


async def test_hostile_links_leak_nothing_of_the_host_anywhere(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary = f"canary-{uuid4().hex}"
    monkeypatch.setenv("SIS_CLIENT_SECRET", canary)  # the services inherit it
    monkeypatch.setenv("ROSTERSYNC_PLANTED_TOKEN", canary)
    inbox = tmp_path / "sftp"
    inbox.mkdir()
    bundles = hostile_bundles(tmp_path)
    tenants = tenants_file(tmp_path, bundles, inbox)
    cli = cli_settings(settings, tenants)
    await ensure_topics(settings)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [start_logged(n, cli, logs, ROSTERSYNC_INBOX_POLL_SECONDS="0.5") for n in SERVICES]
    try:
        runs = {t: (await request_sync(cli, t, None)).run_id for t in bundles}
        drop = tmp_path / "drop"
        generate(drop, DistrictShape(students=30))
        (drop / "users.csv").unlink()
        (drop / "users.csv").symlink_to("/proc/self/environ")
        drop.rename(inbox / "nightly")
        statuses: dict[str, str | None] = {}
        async with asyncio.timeout(180):
            while len(statuses) < len(bundles) + 1:
                for tenant in [*bundles, "linked-drop"]:
                    status = await ended(db, tenant, runs.get(tenant))
                    if status is not None:
                        statuses[tenant] = status
                await asyncio.sleep(0.3)
    finally:
        stop_all(procs)

    # Every run ended, and the reasons name the link (never its target's contents).
    assert statuses["linked-manifest"] == "failed"
    reason = await db.fetchval(
        "SELECT fetch_error FROM sync_runs WHERE run_id = $1", runs["linked-manifest"]
    )
    assert "manifest.csv is a symbolic link" in reason
    unsafe = await db.fetch(
        "SELECT tenant_id, file FROM findings WHERE code = 'unsafe_file' ORDER BY tenant_id"
    )
    assert {(r["tenant_id"], r["file"]) for r in unsafe} >= {
        ("linked-file", "orgs.csv"),
        ("linked-member", "users.csv"),
        ("linked-drop", "users.csv"),
    }
    assert list(inbox.glob("*/*_nightly.report.json"))

    host = [canary, PASSWD_FIRST_LINE]
    rows = await every_row(db, settings.db_schema)
    messages = await every_message(settings)
    logged = "\n".join(p.read_text(errors="replace") for p in logs.iterdir())
    # The searches see what they search: the runs' own words are there.
    assert "linked-member" in rows
    assert b"linked-drop" in messages
    assert "tenant linked-file" in logged or "linked-file" in logged
    for secret in host:
        assert secret not in rows
        assert secret.encode() not in messages
        assert secret not in logged
    assert "ROSTERSYNC_PLANTED_TOKEN" not in rows + logged
