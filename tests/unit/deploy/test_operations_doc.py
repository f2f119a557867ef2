"""docs/operations.md's settings table names every setting the services read."""

from __future__ import annotations

from pathlib import Path

from rostersync_api.settings import ApiSettings
from rostersync_fetcher.settings import FetcherSettings
from rostersync_libs.settings import ServiceSettings

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def test_every_setting_is_in_the_table() -> None:
    table = DOC.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    names = {
        f"ROSTERSYNC_{name.upper()}"
        for settings in (ServiceSettings, FetcherSettings, ApiSettings)
        for name in settings.model_fields
    }
    assert len(names) > 30
    assert sorted(n for n in names if f"`{n}`" not in table) == []
