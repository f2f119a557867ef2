"""The OneRoster CSV conformance categories end to end: one tenant per category, all synced through
one running pipeline on real Kafka and PostgreSQL; each run's findings table holds its category's
own code, where it belongs, and no code of another category."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from rostersync_cli.actions import request_sync
from rostersync_libs.settings import ServiceSettings

from tests.conformance import CATEGORIES
from tests.e2e import cli_settings
from tests.pipeline import running_pipeline, wait_for_run

pytestmark = pytest.mark.integration


def write_tenants(path: Path, bundles: dict[str, Path]) -> Path:
    path.write_text(
        "".join(
            f'[[tenants]]\nid = "{tenant}"\nname = "{tenant}"\nvalidation = "strict"\n\n'
            f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{bundle}"\n\n'
            for tenant, bundle in bundles.items()
        )
    )
    return path


async def test_each_conformance_category_raises_its_own_code_end_to_end(
    settings: ServiceSettings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    tenants = {f"c{i}": category for i, category in enumerate(CATEGORIES)}
    bundles = {t: CATEGORIES[c][0](tmp_path / t) for t, c in tenants.items()}
    tenants_file = write_tenants(tmp_path / "t.toml", bundles)
    runs: dict[str, UUID] = {}
    async with running_pipeline(settings, tenants_file):
        for tenant in tenants:
            command = await request_sync(cli_settings(settings, tenants_file), tenant, None)
            runs[tenant] = command.run_id
        for tenant, run_id in runs.items():
            await wait_for_run(settings, tenant, run_id, timeout=120)

    codes = {code for _, code, _ in CATEGORIES.values()}
    for tenant, category in tenants.items():
        _, code, where = CATEGORIES[category]
        rows = await db.fetch(
            "SELECT code, severity, file, row, column_name, value FROM findings"
            " WHERE tenant_id = $1 AND run_id = $2",
            tenant,
            runs[tenant],
        )
        found = {tuple(r) for r in rows}
        assert (where[0], "error", *where[1:]) in found, category  # strict: every one an error
        others = codes - {code} - ({"missing_required_data"} if code == "missing_header" else set())
        assert {r["code"] for r in rows} & others == set(), category
