from __future__ import annotations

import zipfile
from pathlib import Path
from uuid import uuid4

import pytest
from rostersync_fetcher.csv.headers import HeaderMap
from rostersync_fetcher.csv.index import BundleIndex, find_cycles
from rostersync_fetcher.csv.records import FileContext, event_of_row
from rostersync_libs.events import Operation
from rostersync_libs.oneroster.bundle import Bundle, BundleError
from rostersync_libs.oneroster.columns import USERS_1_1

MANIFEST = "propertyName,value\nmanifest.version,1.0\nfile.users,bulk\n"
USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
    'u1,,,true,"o1, o2",student,sam,"{LDAP:1},{LTI:2}",Sam,"Smith, Jr",,,,,,,"09,10",hunter2\n'
    "u2,inactive,2026-01-02,true,o1,teacher,tina,,Tina,T,,,,,,,,\n"
)


def _rows(bundle: Bundle, name: str) -> tuple[list[str], list[list[str]], list[int]]:
    with bundle.reader(name, bundle.encoding(name)) as (header, rows):
        read = list(rows)
    return header, [r.values for r in read], [r.number for r in read]


def test_folder_bundle_with_bom_streams_rows_with_their_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    (tmp_path / "users.csv").write_bytes(b"\xef\xbb\xbf" + USERS.encode())
    bundle = Bundle(tmp_path)
    assert bundle.manifest()["file.users"] == "bulk"
    assert bundle.encoding("users.csv").problem is None
    header, values, numbers = _rows(bundle, "users.csv")
    assert header[0] == "sourcedId"  # the BOM is not part of the first header
    assert numbers == [2, 3]
    assert values[0][9] == "Smith, Jr"


def test_a_latin1_file_is_detected_read_and_reported(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    (tmp_path / "users.csv").write_bytes(USERS.replace("Tina", "Tiña").encode("latin-1"))
    bundle = Bundle(tmp_path)
    encoding = bundle.encoding("users.csv")
    assert encoding.problem is not None
    assert "0xf1" in encoding.problem
    _, values, _ = _rows(bundle, "users.csv")
    assert values[1][8] == "Tiña"


def test_zip_bundle_one_folder_down(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/manifest.csv", MANIFEST)
        zf.writestr("export/users.csv", USERS)
        zf.writestr("export/results.csv", "sourcedId\n")
    bundle = Bundle(archive)
    _, values, _ = _rows(bundle, "users.csv")
    assert [v[0] for v in values] == ["u1", "u2"]
    assert bundle.files() == ["manifest.csv", "results.csv", "users.csv"]
    bundle.close()


def test_a_bundle_without_manifest_is_refused_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text(USERS)
    with pytest.raises(BundleError, match=r"manifest\.csv"):
        Bundle(tmp_path)


def test_headers_match_by_name_in_any_order_and_case_and_never_copy_passwords() -> None:
    header = ["SOURCEDID", "givenName", "password", "metadata.house", "shoeSize"]
    mapped = HeaderMap.build(header, USERS_1_1)
    assert mapped.values(["u1", "Sam", "pw", "Gryffindor", "42"]) == {
        "sourcedId": "u1",
        "givenName": "Sam",
        "metadata.house": "Gryffindor",
    }


def test_rows_become_events_with_lists_split_and_inactive_deleted(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    (tmp_path / "users.csv").write_text(USERS)
    bundle = Bundle(tmp_path)
    with bundle.reader("users.csv", bundle.encoding("users.csv")) as (header, rows):
        ctx = FileContext(
            tenant="t",
            source="csv",
            run_id=uuid4(),
            spec=USERS_1_1,
            mode="delta",
            version="1.1",
            header=HeaderMap.build(header, USERS_1_1),
            index=BundleIndex(),
        )
        first, second = (event_of_row(ctx, row, {}) for row in rows)
    assert first is not None
    assert second is not None
    assert first.payload["orgSourcedIds"] == ["o1", "o2"]
    assert first.payload["grades"] == ["09", "10"]
    assert "password" not in first.payload
    assert first.operation is Operation.UPSERT
    assert first.origin is not None
    assert (first.origin.file, first.origin.row) == ("users.csv", 2)
    assert first.facts is not None
    assert first.facts.unresolved == {"orgSourcedIds": ["o1", "o2"]}  # no orgs.csv here
    assert second.operation is Operation.DELETE
    assert second.date_last_modified is not None
    assert second.date_last_modified.tzinfo is not None


def test_org_cycles_are_found_with_what_hangs_below_them() -> None:
    parents = {"a": "b", "b": "a", "c": "a", "d": "e"}
    assert find_cycles(parents) == {"a", "b", "c"}


def test_the_id_index_answers_like_a_set_and_finds_repeats() -> None:
    from rostersync_fetcher.csv.index import IdSet

    ids = IdSet()
    for n in [*range(5000), 17, 4242, 17]:
        ids.add(f"usr-{n:07d}")
    ids.freeze()
    assert len(ids) == 5003
    assert all(f"usr-{n:07d}" in ids for n in range(5000))
    assert "usr-0005000" not in ids
    assert "" not in ids
    assert [n for n in range(5000) if ids.is_duplicate(f"usr-{n:07d}")] == [17, 4242]
