"""CSV rows → OneRoster REST JSON objects, 1.1 and 1.2 rostering.

Decisions (see docs/oneroster-server.md): every value is a string as in OneRoster JSON
(``enabledUser: "true"``); references are GUIDRefs ``{href, sourcedId, type}``; list columns
are arrays (``[]`` when blank); blank optional scalars and blank references are left out;
``metadata.x`` columns go into a ``metadata`` object (``{"x": …}``, left out when all blank).
"""

from __future__ import annotations

import re
from typing import Any

from rostersync_oneroster_server.data import Record, RosterData

JSON = dict[str, Any]
HEAD = ("sourcedId", "status", "dateLastModified", "metadata")

# Per entity: (CSV column, JSON field, kind, GUIDRef type and collection for references).
# kind: "s" string, "l" list, "r" one reference, "rl" reference list.
Spec = tuple[str, str, str, str]
_ORG = ("org", "orgs")
COMMON: dict[str, tuple[Spec, ...]] = {
    "orgs": (
        ("name", "name", "s", ""),
        ("type", "type", "s", ""),
        ("identifier", "identifier", "s", ""),
        ("parentSourcedId", "parent", "r", "org"),
    ),
    "academicSessions": (
        ("title", "title", "s", ""),
        ("type", "type", "s", ""),
        ("startDate", "startDate", "s", ""),
        ("endDate", "endDate", "s", ""),
        ("parentSourcedId", "parent", "r", "academicSession"),
        ("schoolYear", "schoolYear", "s", ""),
    ),
    "courses": (
        ("title", "title", "s", ""),
        ("schoolYearSourcedId", "schoolYear", "r", "academicSession"),
        ("courseCode", "courseCode", "s", ""),
        ("grades", "grades", "l", ""),
        ("subjects", "subjects", "l", ""),
        ("orgSourcedId", "org", "r", "org"),
        ("subjectCodes", "subjectCodes", "l", ""),
    ),
    "classes": (
        ("title", "title", "s", ""),
        ("classCode", "classCode", "s", ""),
        ("classType", "classType", "s", ""),
        ("location", "location", "s", ""),
        ("grades", "grades", "l", ""),
        ("subjects", "subjects", "l", ""),
        ("courseSourcedId", "course", "r", "course"),
        ("schoolSourcedId", "school", "r", "org"),
        ("termSourcedIds", "terms", "rl", "academicSession"),
        ("subjectCodes", "subjectCodes", "l", ""),
        ("periods", "periods", "l", ""),
    ),
    "enrollments": (
        ("userSourcedId", "user", "r", "user"),
        ("classSourcedId", "class", "r", "class"),
        ("schoolSourcedId", "school", "r", "org"),
        ("role", "role", "s", ""),
        ("primary", "primary", "s", ""),
        ("beginDate", "beginDate", "s", ""),
        ("endDate", "endDate", "s", ""),
    ),
    "demographics": tuple(
        (c, c, "s", "")
        for c in [
            "birthDate",
            "sex",
            "americanIndianOrAlaskaNative",
            "asian",
            "blackOrAfricanAmerican",
            "nativeHawaiianOrOtherPacificIslander",
            "white",
            "demographicRaceTwoOrMoreRaces",
            "hispanicOrLatinoEthnicity",
            "countryOfBirthCode",
            "stateOfBirthAbbreviation",
            "cityOfBirth",
            "publicSchoolResidenceStatus",
        ]
    ),
}
_USER_START: tuple[Spec, ...] = (
    ("username", "username", "s", ""),
    ("userIds", "userIds", "u", ""),
    ("enabledUser", "enabledUser", "s", ""),
    ("givenName", "givenName", "s", ""),
    ("familyName", "familyName", "s", ""),
    ("middleName", "middleName", "s", ""),
)
_USER_END: tuple[Spec, ...] = (
    ("identifier", "identifier", "s", ""),
    ("email", "email", "s", ""),
    ("sms", "sms", "s", ""),
    ("phone", "phone", "s", ""),
    ("agentSourcedIds", "agents", "rl", "user"),
    ("grades", "grades", "l", ""),
    ("password", "password", "s", ""),
)
USERS_1_1: tuple[Spec, ...] = (*_USER_START, *_USER_END)
# CSV preferredGivenName/preferredFamilyName are JSON preferredFirstName/preferredLastName.
USERS_1_2: tuple[Spec, ...] = (
    *_USER_START,
    ("preferredGivenName", "preferredFirstName", "s", ""),
    ("preferredMiddleName", "preferredMiddleName", "s", ""),
    ("preferredFamilyName", "preferredLastName", "s", ""),
    ("pronouns", "pronouns", "s", ""),
    ("userMasterIdentifier", "userMasterIdentifier", "s", ""),
    ("primaryOrgSourcedId", "primaryOrg", "r", "org"),
    *_USER_END,
    ("resourceSourcedIds", "resources", "rl", "resource"),
)
COLLECTION_OF = {
    "org": "orgs",
    "academicSession": "academicSessions",
    "course": "courses",
    "class": "classes",
    "user": "users",
    "resource": "resources",
}
# 1.2 role names that 1.1 does not have, as 1.1 names them; and 1.1's "administrator" in 1.2.
ROLE_1_2_TO_1_1 = {
    "counselor": "administrator",
    "principal": "administrator",
    "siteAdministrator": "administrator",
    "districtAdministrator": "administrator",
    "systemAdministrator": "administrator",
}
_USER_ID = re.compile(r"\{\s*([^:}]+?)\s*:\s*([^}]*?)\s*\}")


def fields_of(entity: str, version: str) -> frozenset[str]:
    """The JSON fields an object of this entity can have: what filter/sort/fields may name."""
    extra: tuple[str, ...]
    if entity == "users":
        specs = USERS_1_2 if version == "1.2" else USERS_1_1
        extra = ("roles", "userProfiles") if version == "1.2" else ("role", "orgs")
    else:
        specs = COMMON[entity]
        extra = ("children",) if entity in ("orgs", "academicSessions") else ()
    return frozenset((*HEAD, *(s[1] for s in specs), *extra))


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def user_ids(value: str) -> list[JSON]:
    """``{LDAP:12},{LTI:15}`` → ``[{"type": "LDAP", "identifier": "12"}, …]``."""
    return [{"type": t, "identifier": i} for t, i in _USER_ID.findall(value)]


class Shaper:
    """Makes the JSON of one version's API, with hrefs under ``api_base``."""

    def __init__(self, data: RosterData, version: str, api_base: str) -> None:
        self.data = data
        self.version = version  # "1.1" or "1.2"
        self.api_base = api_base.rstrip("/")

    def ref(self, ref_type: str, sourced_id: str) -> JSON:
        collection = COLLECTION_OF.get(ref_type, ref_type + "s")
        return {
            "href": f"{self.api_base}/{collection}/{sourced_id}",
            "sourcedId": sourced_id,
            "type": ref_type,
        }

    def to_json(self, entity: str, record: Record) -> JSON:
        row = record.row
        out: JSON = {
            "sourcedId": record.sourced_id,
            "status": record.status,
            "dateLastModified": record.date_last_modified,
        }
        if entity == "users":
            specs = USERS_1_2 if self.version == "1.2" else USERS_1_1
        else:
            specs = COMMON[entity]
        for column, name, kind, ref_type in specs:
            value = row.get(column, "")
            if kind == "l":
                out[name] = split_list(value)
            elif kind == "u":
                out[name] = user_ids(value)
            elif kind == "rl":
                if column in row or name != "resources":
                    out[name] = [self.ref(ref_type, v) for v in split_list(value)]
            elif value and kind == "r":
                out[name] = self.ref(ref_type, value)
            elif value:
                out[name] = value
        if entity in ("orgs", "academicSessions"):
            ref_type = "org" if entity == "orgs" else "academicSession"
            children = self.data.children_of(entity, record.sourced_id)
            out["children"] = [self.ref(ref_type, c) for c in children]
        if entity == "users":
            self._user_roles(record, out)
        metadata = {
            k[len("metadata.") :]: v for k, v in row.items() if k.startswith("metadata.") and v
        }
        if metadata:
            out["metadata"] = metadata
        return out

    def _user_roles(self, record: Record, out: JSON) -> None:
        roles = self._roles(record)
        if self.version == "1.2":
            out["roles"] = roles
            out["userProfiles"] = [
                _profile(p)
                for p in self.data.profiles_of(record.sourced_id)
                if p.status == "active"
            ]
            return
        if self.data.is_1_2:
            primary = [r for r in roles if r["roleType"] == "primary"] or roles
            if primary:
                role = primary[0]["role"]
                out["role"] = ROLE_1_2_TO_1_1.get(role, role)
            orgs = list(dict.fromkeys(r["org"]["sourcedId"] for r in roles))
        else:
            if record.row.get("role"):
                out["role"] = record.row["role"]
            orgs = split_list(record.row.get("orgSourcedIds", ""))
        out["orgs"] = [self.ref("org", o) for o in orgs]

    def _roles(self, record: Record) -> list[JSON]:
        """1.2 ``roles[]``: from roles.csv, or from a 1.1 user's role and orgSourcedIds."""
        if not self.data.is_1_2:
            role = record.row.get("role", "")
            roles: list[JSON] = []
            for org in split_list(record.row.get("orgSourcedIds", "")):
                name = role
                if role == "administrator":
                    org_record = self.data.get("orgs", org)
                    district = org_record is not None and org_record.row.get("type") == "district"
                    name = "districtAdministrator" if district else "siteAdministrator"
                roles.append({"roleType": "primary", "role": name, "org": self.ref("org", org)})
            return roles
        out: list[JSON] = []
        for r in self.data.roles_of(record.sourced_id):
            if r.status != "active":
                continue
            item: JSON = {
                "roleType": r.row.get("roleType", ""),
                "role": r.row.get("role", ""),
                "org": self.ref("org", r.row.get("orgSourcedId", "")),
            }
            for column, name in (
                ("userProfileSourcedId", "userProfile"),
                ("beginDate", "beginDate"),
                ("endDate", "endDate"),
            ):
                if r.row.get(column):
                    item[name] = r.row[column]
            out.append(item)
        return out


def _profile(record: Record) -> JSON:
    row = record.row
    profile: JSON = {"profileId": record.sourced_id}
    for column in ("profileType", "vendorId", "applicationId", "description"):
        if row.get(column):
            profile[column] = row[column]
    credential: JSON = {"type": row.get("credentialType", ""), "username": row.get("username", "")}
    if row.get("password"):
        credential["password"] = row["password"]
    profile["credentials"] = [credential]
    return profile


def has_role(user: JSON, role: str) -> bool:
    """Whether a served user (1.1 or 1.2 shape) holds a role: for /students and /teachers."""
    if user.get("role") == role:
        return True
    return any(r.get("role") == role for r in user.get("roles", []))
