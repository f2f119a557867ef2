"""The fetcher's limits through the normal sync path, on real Kafka and PostgreSQL: a zip bomb
fails its run with the reason (from a csv source and from an inbox, which moves it to failed/),
an over-long line is a finding on its line while the rest of the file lands and nothing of the
file is swept, and the other tenants' runs complete."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path
from uuid import UUID

import asyncpg
import orjson
import pytest
from rostersync_cli.actions import request_sync
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.bundles import write_bundle
from tests.e2e import cli_settings, ids
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration


def zip_bomb(path: Path) -> Path:
    """4 MiB of one byte behind a 4 KiB member: 1000 times its size."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.csv", "propertyName,value\noneroster.version,1.1\nfile.users,bulk\n")
        zf.writestr("users.csv", "a" * (4 << 20))
    return path


def tenant(tenant_id: str, kind: str, path: Path, limits: str = "", extra: str = "") -> str:
    return (
        f'[[tenants]]\nid = "{tenant_id}"\nname = "{tenant_id}"\nhold_threshold = 1.0\n'
        f'[[tenants.sources]]\nid = "src"\nkind = "{kind}"\npath = "{path}"\n{extra}'
        + (f"limits = {{ {limits} }}\n" if limits else "")
    )


async def status(db: asyncpg.Connection, run_id: UUID) -> tuple[str | None, str | None]:
    try:
        row = await db.fetchrow(
            "SELECT status, fetch_error FROM sync_runs WHERE run_id = $1", run_id
        )
    except asyncpg.UndefinedTableError:
        return (None, None)
    return (row["status"], row["fetch_error"]) if row else (None, None)


async def test_limits_fail_a_zip_bomb_and_cut_a_long_line_while_other_tenants_complete(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip")
    long_bundle = write_bundle(tmp_path / "long", districts.bundle_1_1())
    fine = write_bundle(tmp_path / "fine", districts.bundle_1_1())
    drop = tmp_path / "sftp"
    drop.mkdir()
    tenants = tmp_path / "t.toml"
    tenants.write_text(
        tenant("bomb", "csv", bomb, "max_zip_ratio = 10")
        + tenant("long", "csv", long_bundle, "max_line_bytes = 1024")
        + tenant("fine", "csv", fine)
        + tenant("drop", "inbox", drop, "max_zip_ratio = 10", "settle_seconds = 0\n")
    )
    cli = cli_settings(settings, tenants)
    async with running_pipeline(settings, tenants, inbox_poll_seconds=0.2):
        # 1. A first full load of "long", with one more user than the bundle will hold later.
        users = long_bundle / "users.csv"
        original = users.read_text()
        users.write_text(original + "u-gone,,,true,s1,student,gone,,Gone,Away,,,,,,,,\n")
        first = await request_sync(cli, "long", None)
        await wait_for_run(settings, "long", first.run_id)
        assert "u-gone" in await ids(db, "users", "long")

        # 2. The bomb, the over-long line (line 3 of users.csv) and a clean tenant, at once.
        header, first_user, *rest = original.splitlines(keepends=True)
        huge = "u-huge,,,true,s1,student,huge,,H" + "x" * 5000 + ",Huge,,,,,,,,\n"
        users.write_text(header + first_user + huge + "".join(rest))
        bombed = await request_sync(cli, "bomb", None)
        cut = await request_sync(cli, "long", None)
        clean = await request_sync(cli, "fine", None)
        zip_bomb(tmp_path / "nightly.zip").rename(drop / "nightly.zip")

        async with asyncio.timeout(90):
            while (await status(db, bombed.run_id))[0] != "failed":
                await asyncio.sleep(0.2)
            while not list(drop.glob("failed/*_nightly.zip.report.json")):
                await asyncio.sleep(0.2)
        await wait_for_run(settings, "long", cut.run_id)
        await wait_for_run(settings, "fine", clean.run_id)

    _, reason = await status(db, bombed.run_id)
    assert reason is not None
    assert "bomb.zip: users.csv would unpack from" in reason
    assert "more than max_zip_ratio (10); a zip bomb? not read" in reason
    assert await ids(db, "users", "bomb") == set()

    (report,) = drop.glob("failed/*.report.json")
    dropped = orjson.loads(report.read_text())
    assert dropped["phase"] == "failed"
    assert "max_zip_ratio (10)" in dropped["reason"]
    assert list(drop.glob("failed/*_nightly.zip"))
    assert list((drop / ".processing").iterdir()) == []

    findings = await db.fetch(
        "SELECT code, severity, file, row, message FROM findings WHERE run_id = $1", cut.run_id
    )
    assert [tuple(f)[:4] for f in findings] == [("line_too_long", "error", "users.csv", 3)]
    assert findings[0]["message"] == (
        "line 3 is longer than 1024 bytes (max_line_bytes); it is not read"
    )
    # The rest of users.csv landed; u-gone is not swept: a cut file is no complete snapshot.
    assert await ids(db, "users", "long") == {"u-t1", "u-s1", "u-s2", "u-p1", "u-gone"}
    assert await ids(db, "enrollments", "long") == {"e1", "e2", "e3"}
    assert await ids(db, "users", "fine") == {"u-t1", "u-s1", "u-s2", "u-p1"}
