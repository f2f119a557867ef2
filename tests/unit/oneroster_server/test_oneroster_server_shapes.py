"""The OneRoster server's JSON shapes (1.1 and 1.2) and its data mutations."""

from __future__ import annotations

from pathlib import Path

import pytest
from rostersync_oneroster_server.data import RosterData, UnknownRecordError, write_bundle
from rostersync_oneroster_server.json_shapes import Shaper

BASE = "http://h/ims/oneroster"
ORGS = [
    {"sourcedId": "dist", "name": "District", "type": "district"},
    {"sourcedId": "sch-1", "name": "School 1", "type": "school", "parentSourcedId": "dist"},
]


def ref(path: str, sid: str, kind: str, api: str = "/rostering/v1p2") -> dict[str, str]:
    return {"href": f"{BASE}{api}/{path}/{sid}", "sourcedId": sid, "type": kind}


@pytest.fixture
def bundle_1_2(tmp_path: Path) -> Path:
    user = {
        "sourcedId": "u1",
        "enabledUser": "true",
        "username": "jdoe",
        "userIds": "{LDAP:12},{LTI:15}",
        "givenName": "Jane",
        "familyName": "Doe",
        "preferredGivenName": "Janie",
        "preferredMiddleName": "Q",
        "preferredFamilyName": "Dough",
        "primaryOrgSourcedId": "sch-1",
        "userMasterIdentifier": "P-0001",
        "pronouns": "she/her",
        "grades": "09,10",
        "agentSourcedIds": "p1",
        "metadata.jp.kana": "ジェーン",
    }
    parent = {"sourcedId": "p1", "enabledUser": "false", "username": "p", "givenName": "P"}
    roles = [
        {"sourcedId": "r1", "userSourcedId": "u1", "roleType": "primary", "role": "student",
         "beginDate": "2024-08-15", "orgSourcedId": "sch-1", "userProfileSourcedId": "prof-1"},
        {"sourcedId": "r2", "userSourcedId": "u1", "roleType": "secondary", "role": "aide",
         "orgSourcedId": "dist"},
        {"sourcedId": "r3", "userSourcedId": "p1", "roleType": "primary", "role": "principal",
         "orgSourcedId": "sch-1"},
    ]  # fmt: skip
    profiles = [
        {"sourcedId": "prof-1", "userSourcedId": "u1", "profileType": "lms", "vendorId": "v",
         "credentialType": "login", "username": "jdoe-lms"},
    ]  # fmt: skip
    return write_bundle(
        tmp_path / "b12",
        {"orgs": ORGS, "users": [user, parent], "roles": roles, "userProfiles": profiles},
        "1.2.1",
    )


@pytest.fixture
def bundle_1_1(tmp_path: Path) -> Path:
    users = [
        {"sourcedId": "u1", "enabledUser": "true", "orgSourcedIds": "sch-1,dist", "role": "teacher",
         "username": "t", "givenName": "T", "familyName": "Eacher", "userIds": "{SIS:7}"},
        {"sourcedId": "a1", "enabledUser": "true", "orgSourcedIds": "dist", "role": "administrator",
         "username": "a", "givenName": "A", "familyName": "Dmin"},
    ]  # fmt: skip
    classes = [
        {"sourcedId": "c1", "title": "Math", "courseSourcedId": "crs", "classType": "scheduled",
         "schoolSourcedId": "sch-1", "termSourcedIds": "t1,t2", "periods": "1, 2"},
    ]  # fmt: skip
    return write_bundle(tmp_path / "b11", {"orgs": ORGS, "users": users, "classes": classes}, "1.1")


def test_1_2_user(bundle_1_2: Path) -> None:
    data = RosterData(bundle_1_2)
    user = Shaper(data, "1.2", BASE + "/rostering/v1p2").to_json("users", data.ordered("users")[1])
    assert user == {
        "sourcedId": "u1",
        "status": "active",
        "dateLastModified": data.loaded_at,
        "username": "jdoe",
        "userIds": [{"type": "LDAP", "identifier": "12"}, {"type": "LTI", "identifier": "15"}],
        "enabledUser": "true",
        "givenName": "Jane",
        "familyName": "Doe",
        # CSV preferredGivenName/FamilyName are JSON preferredFirstName/LastName
        "preferredFirstName": "Janie",
        "preferredMiddleName": "Q",
        "preferredLastName": "Dough",
        "pronouns": "she/her",
        "userMasterIdentifier": "P-0001",
        "primaryOrg": ref("orgs", "sch-1", "org"),
        "agents": [ref("users", "p1", "user")],
        "grades": ["09", "10"],
        "roles": [
            {
                "roleType": "primary",
                "role": "student",
                "org": ref("orgs", "sch-1", "org"),
                "userProfile": "prof-1",
                "beginDate": "2024-08-15",
            },
            {"roleType": "secondary", "role": "aide", "org": ref("orgs", "dist", "org")},
        ],
        "userProfiles": [
            {
                "profileId": "prof-1",
                "profileType": "lms",
                "vendorId": "v",
                "credentials": [{"type": "login", "username": "jdoe-lms"}],
            },
        ],
        "metadata": {"jp.kana": "ジェーン"},
    }
    assert data.loaded_at.endswith("Z")
    assert len(data.loaded_at) == 24


def test_1_2_bundle_served_as_1_1(bundle_1_2: Path) -> None:
    data = RosterData(bundle_1_2)
    shaper = Shaper(data, "1.1", BASE + "/v1p1")
    user = shaper.to_json("users", data.ordered("users")[1])
    assert user["role"] == "student"  # the primary role
    assert [o["sourcedId"] for o in user["orgs"]] == ["sch-1", "dist"]
    assert "roles" not in user
    assert "preferredFirstName" not in user
    principal = shaper.to_json("users", data.ordered("users")[0])
    assert principal["role"] == "administrator"  # 1.1 has no principal
    assert principal["enabledUser"] == "false"


def test_1_1_user_and_1_1_bundle_served_as_1_2(bundle_1_1: Path) -> None:
    data = RosterData(bundle_1_1)
    admin, teacher = data.ordered("users")
    v11 = Shaper(data, "1.1", BASE + "/v1p1").to_json("users", teacher)
    assert v11["role"] == "teacher"
    assert v11["orgs"] == [
        ref("orgs", "sch-1", "org", "/v1p1"),
        ref("orgs", "dist", "org", "/v1p1"),
    ]
    assert v11["userIds"] == [{"type": "SIS", "identifier": "7"}]
    assert v11["agents"] == []
    assert v11["grades"] == []
    assert "middleName" not in v11  # blank optional values are left out
    v12 = Shaper(data, "1.2", BASE + "/rostering/v1p2")
    assert v12.to_json("users", teacher)["roles"] == [
        {"roleType": "primary", "role": "teacher", "org": ref("orgs", "sch-1", "org")},
        {"roleType": "primary", "role": "teacher", "org": ref("orgs", "dist", "org")},
    ]
    assert v12.to_json("users", admin)["roles"][0]["role"] == "districtAdministrator"


def test_other_shapes(bundle_1_1: Path) -> None:
    data = RosterData(bundle_1_1)
    shaper = Shaper(data, "1.1", BASE + "/v1p1")
    klass = shaper.to_json("classes", data.ordered("classes")[0])
    assert klass["course"] == ref("courses", "crs", "course", "/v1p1")
    assert klass["school"] == ref("orgs", "sch-1", "org", "/v1p1")
    assert [t["type"] for t in klass["terms"]] == ["academicSession", "academicSession"]
    assert klass["periods"] == ["1", "2"]
    district = shaper.to_json("orgs", data.ordered("orgs")[0])
    assert district["children"] == [ref("orgs", "sch-1", "org", "/v1p1")]
    assert "parent" not in district
    school = shaper.to_json("orgs", data.ordered("orgs")[1])
    assert school["parent"] == ref("orgs", "dist", "org", "/v1p1")


def test_mutations_stamp_strictly_increasing_times(bundle_1_2: Path, tmp_path: Path) -> None:
    data = RosterData(bundle_1_2)
    first = data.touch("orgs", "sch-1")
    second = data.touch("orgs", "sch-1")
    assert data.loaded_at < first < second
    third = data.mark_deleted("orgs", "dist")
    assert data.get("orgs", "dist") is not None
    assert data.records("orgs")["dist"].status == "tobedeleted"
    assert third > second
    data.hard_delete("orgs", "dist")
    assert data.get("orgs", "dist") is None
    with pytest.raises(UnknownRecordError):
        data.touch("orgs", "dist")
    # A changed role changes the user it belongs to.
    before = data.records("users")["u1"].date_last_modified
    delta = write_bundle(
        tmp_path / "delta",
        {
            "roles": [
                {
                    "sourcedId": "r2",
                    "status": "tobedeleted",
                    "userSourcedId": "u1",
                    "roleType": "secondary",
                    "role": "aide",
                    "orgSourcedId": "dist",
                }
            ],
            "users": [
                {
                    "sourcedId": "u9",
                    "status": "active",
                    "enabledUser": "true",
                    "username": "new",
                    "givenName": "N",
                    "familyName": "Ew",
                }
            ],
        },
        "1.2",
    )
    assert data.apply_delta_bundle(delta) == {"users": 1, "roles": 1}
    user = data.records("users")["u1"]
    assert user.date_last_modified > before
    assert data.records("roles")["r2"].status == "tobedeleted"
    assert data.records("users")["u9"].date_last_modified == user.date_last_modified
    shaped = Shaper(data, "1.2", BASE).to_json("users", user)
    assert [r["role"] for r in shaped["roles"]] == ["student"]  # tobedeleted roles are left out
