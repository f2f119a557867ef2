"""One fault of each 1EdTech OneRoster CSV conformance category, on the small test district.

Missing file, missing header, scrambled header, missing (required) data, data type and dangling
reference: each entry makes a bundle with one fault of its category and says which finding code
it must raise and where that finding points (code, file, row, column, value).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rostersync_libs.oneroster.columns import USERS_1_1

from tests import districts
from tests.bundles import write_bundle

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
