"""The 1EdTech OneRoster CSV conformance categories each raise a finding code of their own.

Missing file, missing header, scrambled header, missing (required) data, data type and dangling
reference: one clean district, then one fault of each category, through the fetcher and the
validator in memory (tests/integration/test_conformance_categories.py runs the same bundles end to
end on the real stack).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rostersync_libs.envelope import EntityType
from rostersync_libs.oneroster.columns import USERS_1_1

from tests import districts
from tests.bundles import write_bundle
from tests.judging import judge

Rows = list[dict[str, str]]
Where = tuple[str, str | None, int | None, str | None, str | None]


def _users_header(*, without: str = "", swap: tuple[str, str] | None = None) -> list[str]:
    names = [n for n in USERS_1_1.names if n != without]
    if swap is not None:
        a, b = names.index(swap[0]), names.index(swap[1])
        names[a], names[b] = names[b], names[a]
    return names


def _change(rows: Rows, index: int, **values: str) -> Rows:
    return [r | values if i == index else r for i, r in enumerate(rows)]


def missing_file(folder: Path) -> Path:
    bundle = write_bundle(folder, districts.bundle_1_1())
    # The manifest still says file.demographics,bulk (nothing refers to demographics, so no
    # reference dangles because of it).
    (bundle / "demographics.csv").unlink()
    return bundle


def missing_header(folder: Path) -> Path:
    header = _users_header(without="username")
    return write_bundle(folder, districts.bundle_1_1(), headers={"users": header})


def scrambled_header(folder: Path) -> Path:
    header = _users_header(swap=("givenName", "familyName"))
    return write_bundle(folder, districts.bundle_1_1(), headers={"users": header})


def missing_data(folder: Path) -> Path:
    users = _change(districts.USERS_1_1, 1, familyName="")
    return write_bundle(folder, districts.bundle_1_1() | {"users": users})


def missing_list_data(folder: Path) -> Path:
    """A required list of blanks (" , ") is no value either."""
    users = _change(districts.USERS_1_1, 1, orgSourcedIds=" , ")
    return write_bundle(folder, districts.bundle_1_1() | {"users": users})


def data_type(folder: Path) -> Path:
    sessions = _change(districts.SESSIONS, 1, startDate="15/08/2025")
    return write_bundle(folder, districts.bundle_1_1() | {"academicSessions": sessions})


def dangling_reference(folder: Path) -> Path:
    enrollments = _change(districts.ENROLLMENTS, 2, classSourcedId="k-none")
    return write_bundle(folder, districts.bundle_1_1() | {"enrollments": enrollments})


# category → (bundle with one fault of it, its code, where the finding points)
CATEGORIES: dict[str, tuple[Callable[[Path], Path], str, Where]] = {
    "missing file": (
        missing_file,
        "missing_file",
        ("missing_file", "demographics.csv", None, None, None),
    ),
    "missing header": (
        missing_header,
        "missing_header",
        ("missing_header", "users.csv", 1, "username", None),
    ),
    "scrambled header": (
        scrambled_header,
        "scrambled_header",
        ("scrambled_header", "users.csv", None, None, None),
    ),
    "missing data": (
        missing_data,
        "missing_required_data",
        ("missing_required_data", "users.csv", 3, "familyName", None),
    ),
    "data type": (
        data_type,
        "invalid_data_type",
        ("invalid_data_type", "academicSessions.csv", 3, "startDate", "15/08/2025"),
    ),
    "dangling reference": (
        dangling_reference,
        "dangling_reference",
        ("dangling_reference", "enrollments.csv", 4, "classSourcedId", "k-none"),
    ),
}
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
