"""The manifest's word on each file: blank or unknown ``file.*`` values, case slips, and files
declared absent that bulk files of the bundle reference; each a finding on its manifest.csv line,
reported once per run."""

from __future__ import annotations

import csv
from pathlib import Path

from rostersync_fetcher.csv.plan import plan_bundle, read_mode
from rostersync_libs.events import EntityType, RecordEvent
from rostersync_libs.oneroster.bundle import Bundle, ManifestEntry

from tests import districts
from tests.bundles import write_bundle
from tests.judging import judge

E = EntityType


def with_manifest_lines(folder: Path, lines: dict[str, str]) -> None:
    """Overwrite ``file.*`` values of the manifest write_bundle made (order kept)."""
    path = folder / "manifest.csv"
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows = [[r[0], lines[r[0]]] if r[0] in lines else r for r in rows]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def manifest_line(folder: Path, name: str) -> int:
    with (folder / "manifest.csv").open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if row and row[0] == name:
                return number
    raise AssertionError(name)


def test_how_manifest_values_are_read() -> None:
    assert read_mode(None) == "unlisted"
    assert read_mode(ManifestEntry(4, "bulk")) == "bulk"
    assert read_mode(ManifestEntry(4, "Delta")) == "delta"  # a case slip: read, and reported
    assert read_mode(ManifestEntry(4, "")) == "absent"  # blank: not read
    assert read_mode(ManifestEntry(4, "full")) == "absent"  # unknown: not read


def test_the_manifest_keeps_each_entrys_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(
        "propertyName,value\nmanifest.version,1.0\n\nfile.users, Bulk \nfile.orgs\n"
    )
    entries = Bundle(tmp_path).manifest_entries()
    assert entries["file.users"] == ManifestEntry(4, "Bulk")  # the blank line 3 still counts
    assert entries["file.orgs"] == ManifestEntry(5, "")  # no value field: blank


async def test_blank_and_unknown_manifest_values_are_reported_on_their_line_and_not_read(
    tmp_path: Path,
) -> None:
    folder = write_bundle(tmp_path / "b", districts.bundle_1_1())
    with_manifest_lines(folder, {"file.demographics": "", "file.enrollments": "full"})
    demographics = manifest_line(folder, "file.demographics")
    enrollments = manifest_line(folder, "file.enrollments")
    judged = await judge(folder)

    assert judged.where() == {
        ("manifest_invalid_value", "manifest.csv", demographics, "value", ""),
        ("manifest_invalid_value", "manifest.csv", enrollments, "value", "full"),
    }  # once each, though the facts came on three partitions; no absent_file_present
    messages = {f.row: f.message for f in judged.findings}
    assert messages[demographics] == (
        "file.demographics has no value (expected one of bulk, delta, absent);"
        " read as absent: demographics.csv is not read"
    )
    assert messages[enrollments] == (
        "file.enrollments='full' is not one of bulk, delta, absent;"
        " read as absent: enrollments.csv is not read"
    )
    assert {f.severity.value for f in judged.findings} == {"error"}
    assert not any(e.entity in (E.ENROLLMENT, E.DEMOGRAPHIC) for e in judged.events
                   if isinstance(e, RecordEvent))  # fmt: skip
    plan = plan_bundle(Bundle(folder), "lenient")
    assert plan.skipped["enrollments.csv"] == (
        f"manifest.csv:{enrollments} file.enrollments='full' is not bulk, delta or absent;"
        " read as absent"
    )


async def test_a_case_slip_in_the_manifest_is_read_under_lenient_and_rejects_rows_under_strict(
    tmp_path: Path,
) -> None:
    folder = write_bundle(tmp_path / "b", districts.bundle_1_1())
    with_manifest_lines(folder, {"file.courses": "BULK"})
    line = manifest_line(folder, "file.courses")
    lenient = await judge(folder)
    assert lenient.where() == {("manifest_value_case", "manifest.csv", line, "value", "BULK")}
    assert lenient.findings[0].severity.value == "warning"
    assert lenient.rejected == set()

    strict = await judge(folder, profile="strict")
    assert ("manifest_value_case", "manifest.csv", line, "value", "BULK") in strict.where()
    assert strict.rejected == {"courses.csv:2", "courses.csv:3"}  # file_rejected, as for headers
    assert {f.file for f in strict.findings if f.code == "file_rejected"} == {"courses.csv"}


async def test_a_file_declared_absent_that_bulk_files_reference_is_reported_on_its_line(
    tmp_path: Path,
) -> None:
    files = districts.bundle_1_1()
    del files["courses"]  # file.courses stays "absent", as write_bundle declares it
    folder = write_bundle(tmp_path / "b", files)
    line = manifest_line(folder, "file.courses")
    known = {("t", "courses", "c-alg"), ("t", "courses", "c-read")}
    judged = await judge(folder, known=known)

    assert judged.where() == {
        ("manifest_absent_referenced", "manifest.csv", line, "value", "absent"),
    }  # the references themselves resolve against the tenant's courses
    (finding,) = judged.findings
    assert finding.message == (
        "file.courses=absent, but classes.csv (courseSourcedId) references courses: a bulk"
        " bundle must hold what it references (each reference is looked up in the tenant's"
        " records instead)"
    )
    assert finding.severity.value == "warning"
    strict = await judge(folder, known=known, profile="strict")
    assert {(f.code, f.severity.value) for f in strict.findings} == {
        ("manifest_absent_referenced", "error")
    }
    assert strict.rejected == set()  # the absent file has no rows to reject


async def test_absent_files_referenced_by_several_files_and_by_demographics(tmp_path: Path) -> None:
    files = districts.bundle_1_1()
    del files["classes"], files["users"]
    folder = write_bundle(tmp_path / "b", files)
    judged = await judge(folder)
    messages = {f.message for f in judged.findings if f.code == "manifest_absent_referenced"}
    assert messages == {
        "file.classes=absent, but enrollments.csv (classSourcedId) references classes: a bulk"
        " bundle must hold what it references (each reference is looked up in the tenant's"
        " records instead)",
        "file.users=absent, but demographics.csv (sourcedId) and enrollments.csv (userSourcedId)"
        " reference users: a bulk bundle must hold what it references (each reference is looked"
        " up in the tenant's records instead)",
    }


async def test_delta_files_may_reference_absent_files_and_empty_columns_do_not_count(
    tmp_path: Path,
) -> None:
    when = {"status": "active", "dateLastModified": "2026-02-01T08:00:00Z"}
    delta = write_bundle(
        tmp_path / "delta",
        {"enrollments": [e | when for e in districts.ENROLLMENTS]},
        mode="delta",
    )
    known = {("t", "classes", "k-alg1"), ("t", "classes", "k-home"), ("t", "orgs", "s1"),
             ("t", "orgs", "s2"), ("t", "users", "u-t1"), ("t", "users", "u-s1"),
             ("t", "users", "u-s2")}  # fmt: skip
    assert (await judge(delta, known=known)).findings == []

    # orgs.parentSourcedId is the only reference of orgs.csv, to orgs itself; academicSessions
    # (bulk) reference academicSessions only: nothing points at the absent files.
    bulk = write_bundle(
        tmp_path / "bulk", {"orgs": districts.ORGS, "academicSessions": districts.SESSIONS}
    )
    assert (await judge(bulk)).findings == []
    # courses reference academicSessions only through an optional column left blank.
    courses = [
        {k: v for k, v in c.items() if k != "schoolYearSourcedId"} for c in districts.COURSES
    ]
    blank = write_bundle(tmp_path / "blank", {"orgs": districts.ORGS, "courses": courses})
    assert (await judge(blank)).findings == []
