"""Referential integrity of a bundle end to end (real Kafka and PostgreSQL): demographics whose user
is nowhere are rejected with a finding, and manifest faults are findings on their manifest.csv
line, stored once and shown in the run report."""

from __future__ import annotations

import csv
from pathlib import Path

import asyncpg
import pytest
from rostersync_cli.actions import print_run_report
from rostersync_libs.settings import ServiceSettings

from tests import districts
from tests.bundles import write_bundle, write_tenants
from tests.e2e import cli_settings, ids, sync

pytestmark = pytest.mark.integration

STRAY = {"sourcedId": "u-nobody", "birthDate": "2011-02-03", "sex": "female"}


def manifest_line(folder: Path, name: str) -> int:
    with (folder / "manifest.csv").open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if row and row[0] == name:
                return number
    raise AssertionError(name)


async def test_dangling_demographics_and_manifest_faults_are_reported_once_with_their_lines(
    settings: ServiceSettings,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 1. A bulk bundle whose demographics name a user users.csv does not hold.
    files = districts.bundle_1_1() | {"demographics": [*districts.DEMOGRAPHICS, STRAY]}
    first = write_bundle(tmp_path / "first", files)
    run_1 = await sync(settings, write_tenants(tmp_path / "1.toml", "d1", first), "d1")
    rows = await db.fetch(
        "SELECT code, severity, file, row, column_name, value FROM findings WHERE run_id = $1",
        run_1,
    )
    assert {tuple(r) for r in rows} == {
        ("dangling_reference", "error", "demographics.csv", 3, "sourcedId", "u-nobody"),
    }
    assert await ids(db, "demographics") == {"u-s1"}
    rejected = await db.fetch(
        "SELECT sourced_id, origin_file, origin_row FROM rejected_records WHERE run_id = $1", run_1
    )
    assert [tuple(r) for r in rejected] == [("u-nobody", "demographics.csv", 3)]

    # 2. Classes and demographics alone, in bulk: courses, orgs, sessions and users declared
    #    absent (their records are the tenant's from run 1), and a blank file.enrollments.
    second = write_bundle(
        tmp_path / "second",
        {"classes": districts.CLASSES, "demographics": [*districts.DEMOGRAPHICS, STRAY]},
        modes={"enrollments": ""},
    )
    line = {name: manifest_line(second, f"file.{name}") for name in
            ("academicSessions", "courses", "orgs", "users", "enrollments")}  # fmt: skip
    tenants = write_tenants(tmp_path / "2.toml", "d1", second)
    run_2 = await sync(settings, tenants, "d1")
    rows = await db.fetch(
        "SELECT code, severity, file, row, column_name, value FROM findings WHERE run_id = $1",
        run_2,
    )
    found = [tuple(r) for r in rows]
    assert sorted(found, key=str) == sorted(
        [
            ("manifest_absent_referenced", "warning", "manifest.csv", line["academicSessions"], "value", "absent"),
            ("manifest_absent_referenced", "warning", "manifest.csv", line["courses"], "value", "absent"),
            ("manifest_absent_referenced", "warning", "manifest.csv", line["orgs"], "value", "absent"),
            ("manifest_absent_referenced", "warning", "manifest.csv", line["users"], "value", "absent"),
            ("manifest_invalid_value", "error", "manifest.csv", line["enrollments"], "value", None),  # blank: NULL
            ("dangling_reference", "error", "demographics.csv", 3, "sourcedId", "u-nobody"),
        ],
        key=str,
    )  # fmt: skip
    # u-s1's demographics resolve against the tenant's users; enrollments were not read
    assert await ids(db, "demographics") == {"u-s1"}
    assert await ids(db, "enrollments") == {"e1", "e2", "e3"}

    await print_run_report(cli_settings(settings, tenants), "d1", run_2, limit=10)
    printed = capsys.readouterr().out
    assert (
        f"[manifest_absent_referenced] manifest.csv:{line['courses']} column value:"
        " file.courses=absent, but classes.csv (courseSourcedId) references courses"
    ) in printed
    assert (
        f"[manifest_invalid_value] manifest.csv:{line['enrollments']} column value:"
        " file.enrollments has no value (expected one of bulk, delta, absent)"
    ) in printed
    table = [ln.split() for ln in printed.splitlines() if ln.startswith("manifest.csv")]
    assert table, printed  # manifest.csv has its own row in the per-file table
