"""The 1EdTech OneRoster CSV conformance categories each raise a finding code of their own.

Missing file, missing header, scrambled header, missing (required) data, data type and dangling
reference: one clean district, then one fault of each category (tests/conformance.py), through
the fetcher and the validator in memory (tests/integration/test_conformance_categories.py runs
the same bundles end to end on the real stack).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rostersync_libs.events import EntityType

from tests import districts
from tests.bundles import write_bundle
from tests.conformance import CATEGORIES, missing_list_data
from tests.judging import judge

CODES = {code for _, code, _ in CATEGORIES.values()}


def test_every_category_has_a_code_of_its_own() -> None:
    assert len(CODES) == len(CATEGORIES)


async def test_the_clean_district_raises_none_of_them(tmp_path: Path) -> None:
    judged = await judge(write_bundle(tmp_path / "clean", districts.bundle_1_1()))
    assert judged.findings == []


@pytest.mark.parametrize("category", list(CATEGORIES))
@pytest.mark.parametrize("profile", ["lenient", "strict"])
async def test_each_category_raises_its_own_code(
    tmp_path: Path, category: str, profile: str
) -> None:
    make, code, where = CATEGORIES[category]
    judged = await judge(make(tmp_path / "bundle"), profile=profile)

    assert where in judged.where()
    # Faults of one category bring no code of another (a missing header also leaves each row
    # without the value, which is the same category seen from the rows: missing data).
    others = CODES - {code} - ({"missing_required_data"} if code == "missing_header" else set())
    assert judged.codes() & others == set()
    if profile == "strict":
        assert {f.severity.value for f in judged.findings if f.code == code} == {"error"}


async def test_a_required_list_of_blanks_is_missing_data(tmp_path: Path) -> None:
    judged = await judge(missing_list_data(tmp_path / "bundle"))
    assert ("missing_required_data", "users.csv", 3, "orgSourcedIds", None) in judged.where()
    assert "users.csv:3" in judged.rejected
    assert judged.record(EntityType.USER, "u-s1").payload.get("orgSourcedIds") is None
