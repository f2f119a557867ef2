from __future__ import annotations

import zipfile
from pathlib import Path
from uuid import uuid4

import pytest
from rostersync_fetcher.csv_bundle import Bundle, BundleError
from rostersync_fetcher.records import event_of_row
from rostersync_libs.envelope import Operation
from rostersync_libs.oneroster.columns import USERS_1_1

MANIFEST = "propertyName,value\nmanifest.version,1.0\nfile.users,bulk\n"
USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
    'u1,,,true,"o1, o2",student,sam,"{LDAP:1},{LTI:2}",Sam,"Smith, Jr",,,,,,,"09,10",hunter2\n'
    "u2,inactive,2026-01-02,true,o1,teacher,tina,,Tina,T,,,,,,,,\n"
)


def test_folder_bundle_with_bom_streams_rows_with_their_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    (tmp_path / "users.csv").write_bytes(b"\xef\xbb\xbf" + USERS.encode())
    bundle = Bundle(tmp_path)
    assert bundle.manifest()["file.users"] == "bulk"
    rows = list(bundle.rows("users.csv"))
    assert [r.number for r in rows] == [2, 3]
    assert rows[0].values["sourcedId"] == "u1"  # the BOM is not part of the first header
    assert rows[0].values["familyName"] == "Smith, Jr"


def test_zip_bundle_one_folder_down(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/manifest.csv", MANIFEST)
        zf.writestr("export/users.csv", USERS)
    bundle = Bundle(archive)
    assert [r.values["sourcedId"] for r in bundle.rows("users.csv")] == ["u1", "u2"]
    bundle.close()


def test_a_bundle_without_manifest_is_refused_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text(USERS)
    with pytest.raises(BundleError, match=r"manifest\.csv"):
        Bundle(tmp_path)


def test_rows_become_events_with_lists_split_passwords_dropped_and_inactive_deleted(
    tmp_path: Path,
) -> None:
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    (tmp_path / "users.csv").write_text(USERS)
    rows = list(Bundle(tmp_path).rows("users.csv"))
    run = uuid4()
    first, second = (
        event_of_row(tenant="t", source="csv", run_id=run, spec=USERS_1_1, row=row) for row in rows
    )
    assert first.payload["orgSourcedIds"] == ["o1", "o2"]
    assert first.payload["grades"] == ["09", "10"]
    assert "password" not in first.payload
    assert first.operation is Operation.UPSERT
    assert first.origin is not None
    assert (first.origin.file, first.origin.row) == ("users.csv", 2)
    assert second.operation is Operation.DELETE
    assert second.date_last_modified is not None
    assert second.date_last_modified.tzinfo is not None
