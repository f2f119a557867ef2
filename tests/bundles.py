"""Writing small OneRoster CSV bundles for tests."""

from __future__ import annotations

import csv
from pathlib import Path

from rostersync_libs.oneroster.columns import ORGS_1_1, USERS_1_1

ALL_FILES = [
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
]


def write_bundle(
    folder: Path,
    *,
    orgs: list[dict[str, str]],
    users: list[dict[str, str]],
    mode: str = "bulk",
) -> Path:
    """A 1.1 bundle with orgs.csv and users.csv in ``mode``; other files absent."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", "1.0"])
        writer.writerow(["oneroster.version", "1.1"])
        for name in ALL_FILES:
            writer.writerow([f"file.{name}", mode if name in ("orgs", "users") else "absent"])
    for spec, rows in ((ORGS_1_1, orgs), (USERS_1_1, users)):
        with (folder / spec.file_name).open("w", newline="") as handle:
            dict_writer = csv.DictWriter(handle, fieldnames=list(spec.columns))
            dict_writer.writeheader()
            for row in rows:
                dict_writer.writerow(row)
    return folder


def write_tenants(path: Path, tenant: str, bundle: Path) -> Path:
    path.write_text(
        f'[[tenants]]\nid = "{tenant}"\nname = "Test district"\n\n'
        f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{bundle}"\n'
    )
    return path
