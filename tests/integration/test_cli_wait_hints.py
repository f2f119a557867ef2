"""``sync --wait`` says why it waits when nothing moves: here, no fetcher is running."""

from __future__ import annotations

from pathlib import Path

import pytest
from rostersync_libs.run_reports.status import EXIT_NOT_FINISHED
from rostersync_libs.settings import ServiceSettings

from tests.bundles import write_tenants
from tests.cli_process import cli

pytestmark = pytest.mark.integration


async def test_a_wait_with_no_fetcher_running_says_so(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    tenants = write_tenants(tmp_path / "t.toml", "d1", tmp_path)
    waited = await cli(settings, tenants, "sync", "d1", "--wait", "--timeout", "26")
    assert waited.code == EXIT_NOT_FINISHED, waited
    assert "waiting: no fetcher has taken the command (1 waiting); is one running?" in waited.err
    assert "did not finish within 26 s" in waited.err
