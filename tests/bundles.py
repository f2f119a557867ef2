"""Writing small OneRoster CSV bundles for tests."""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.columns import files_for, spec_for

MANIFEST_FILES_1_1 = [
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
MANIFEST_FILES_1_2 = [*MANIFEST_FILES_1_1, "roles", "userProfiles", "userResources"]


def write_bundle(
    folder: Path,
    files: dict[str, list[dict[str, str]]],
    *,
    version: str = "1.1",
    mode: str = "bulk",
    modes: dict[str, str] | None = None,
    headers: dict[str, list[str]] | None = None,
) -> Path:
    """A bundle with one CSV per entry of ``files`` (keyed by entity, e.g. "users").

    Columns are the specification's, in its order, unless ``headers`` says otherwise; every other
    rostering file is declared absent in the manifest.
    """
    folder.mkdir(parents=True, exist_ok=True)
    modes = {name: mode for name in files} | (modes or {})
    listed = MANIFEST_FILES_1_2 if version.startswith("1.2") else MANIFEST_FILES_1_1
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", "1.0"])
        writer.writerow(["oneroster.version", version])
        for name in listed:
            writer.writerow([f"file.{name}", modes.get(name, "absent")])
    for name, rows in files.items():
        columns = (headers or {}).get(name) or list(spec_for(version, EntityType(name)).names)
        with (folder / f"{name}.csv").open("w", newline="") as handle:
            dict_writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            dict_writer.writeheader()
            dict_writer.writerows(rows)
    return folder


def write_tenants(path: Path, tenant: str, bundle: Path, validation: str = "lenient") -> Path:
    path.write_text(
        f'[[tenants]]\nid = "{tenant}"\nname = "Test district"\nvalidation = "{validation}"\n\n'
        f'[[tenants.sources]]\nid = "csv"\nkind = "csv"\npath = "{bundle}"\n'
    )
    return path


__all__ = ["files_for", "write_bundle", "write_tenants"]


def zipped(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
    return target


def without_enrollments(bundle: Path, target: Path) -> Path:
    """The same district, its enrollments file down to its header: a bulk snapshot that would
    end every enrollment (the safety threshold holds it)."""
    shutil.copytree(bundle, target)
    enrollments = target / "enrollments.csv"
    enrollments.write_text(enrollments.read_text().splitlines()[0] + "\n")
    return target
