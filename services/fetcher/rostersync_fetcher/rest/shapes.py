"""OneRoster JSON objects → the same payloads as the CSV path: keyed by the CSV column names of
``columns.py`` for the source's version, lists as lists, everything else as strings, blanks left
out, ``password`` never copied, ``metadata`` kept as ``metadata.<key>``.

Naming rules (reference §4.3 and §3): a GUIDRef ``x`` becomes ``xSourcedId`` (``school`` →
``schoolSourcedId``, ``primaryOrg`` → ``primaryOrgSourcedId``), a GUIDRef list ``xs`` becomes
``xSourcedIds`` (``orgs``, ``agents``, ``terms``); ``userIds[]`` become ``{type:identifier}``;
1.2 ``preferredFirstName``/``preferredLastName`` are CSV ``preferredGivenName``/
``preferredFamilyName``. A 1.2 user's ``roles[]`` become ``roles`` records and its
``userProfiles[]`` become ``userProfiles`` records (see :func:`role_sourced_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.columns import (
    DROPPED_COLUMNS,
    ROLES_1_2_SPEC,
    USER_PROFILES_1_2,
    Column,
    FileSpec,
    Kind,
    spec_for,
)

# CSV column → JSON property, where the names differ otherwise than by the GUIDRef rule.
JSON_NAMES = {
    "preferredGivenName": "preferredFirstName",
    "preferredFamilyName": "preferredLastName",
}
STATUS_COLUMNS = ("status", "dateLastModified")


@dataclass(frozen=True)
class Collection:
    """One collection endpoint and the entity (CSV file) it feeds."""

    path: str  # appended to the API root, and the records' origin file ("/users")
    entity: EntityType

    @property
    def origin(self) -> str:
        return f"/{self.path}"


# Dependency order (reference §4.8): referenced entities first.
COLLECTIONS = (
    Collection("orgs", EntityType.ORG),
    Collection("academicSessions", EntityType.ACADEMIC_SESSION),
    Collection("courses", EntityType.COURSE),
    Collection("classes", EntityType.CLASS),
    Collection("users", EntityType.USER),
    Collection("enrollments", EntityType.ENROLLMENT),
    Collection("demographics", EntityType.DEMOGRAPHIC),
)


def entities_of(collection: Collection, version: str) -> list[EntityType]:
    """The entities a collection's objects become (1.2 users also give roles and profiles)."""
    if collection.entity is EntityType.USER and version.startswith("1.2"):
        return [EntityType.USER, EntityType.USER_PROFILE, EntityType.ROLE]
    return [collection.entity]


@dataclass(frozen=True)
class Shaped:
    """One record made from a JSON object."""

    entity: EntityType
    sourced_id: str
    payload: dict[str, Any]
    status: str  # as the source said it (lower-cased), for the operation


def text(value: Any) -> str | None:
    """A scalar as the CSV would hold it; None for blanks and non-scalars."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def ref_id(value: Any) -> str | None:
    """A GUIDRef's sourcedId (a bare string is tolerated)."""
    if isinstance(value, dict):
        return text(value.get("sourcedId"))
    return text(value)


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):  # a CSV-style "a,b" from a lax server
        return [v for v in value.split(",")]
    return [value]


def _user_id(value: Any) -> str | None:
    if isinstance(value, dict):
        kind, ident = text(value.get("type")), text(value.get("identifier"))
        return f"{{{kind}:{ident}}}" if kind and ident else None
    return text(value)


def _column_value(obj: dict[str, Any], column: Column) -> Any:
    name = column.name
    if column.kind is Kind.REF_LIST:
        key = name.removesuffix("SourcedIds") + "s"
        raw = obj.get(key, obj.get(name))
        return [i for i in (ref_id(v) for v in _items(raw)) if i]
    if column.kind is Kind.REF:
        key = name.removesuffix("SourcedId")
        return ref_id(obj.get(key, obj.get(name)))
    if column.kind is Kind.USER_IDS:
        return [i for i in (_user_id(v) for v in _items(obj.get(name))) if i]
    if column.is_list:
        return [i for i in (text(v) for v in _items(obj.get(name))) if i]
    return text(obj.get(JSON_NAMES.get(name, name), obj.get(name)))


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    kept: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, dict | list):
            value = orjson.dumps(value).decode() if value else None
        shown = text(value)
        if shown is not None:
            kept[f"metadata.{key}"] = shown
    return kept


def payload_of(obj: dict[str, Any], spec: FileSpec, *, bulk: bool) -> dict[str, Any]:
    """The CSV payload of one JSON object. Bulk payloads leave status and dateLastModified out,
    as a bulk CSV file must (the envelope still carries the source's dateLastModified)."""
    payload: dict[str, Any] = {}
    for column in spec.columns:
        if column.name in DROPPED_COLUMNS or (bulk and column.name in STATUS_COLUMNS):
            continue
        value = _column_value(obj, column)
        if value:  # None, "" and [] are blanks, left out as the CSV path does
            payload[column.name] = value
    payload.update(_metadata(obj))
    return payload


def role_sourced_id(user: str, org: str, role: str) -> str:
    """JSON roles have no sourcedId: ``<user sourcedId>:<org sourcedId>:<role>``.

    Deterministic, so the same role gets the same id (and internal id) in every run; unique per
    user, org and role (a second entry with the same three values is the same role).
    """
    return f"{user}:{org}:{role}"


def _status(obj: dict[str, Any]) -> str:
    return (text(obj.get("status")) or "active").lower()


def _roles(user: dict[str, Any], user_id: str, *, bulk: bool) -> list[Shaped]:
    shaped: list[Shaped] = []
    seen: set[str] = set()
    for role in _items(user.get("roles")):
        if not isinstance(role, dict):
            continue
        org, name = ref_id(role.get("org")), text(role.get("role"))
        sourced_id = role_sourced_id(user_id, org or "", name or "")
        if sourced_id in seen:
            continue
        seen.add(sourced_id)
        flat = {
            "sourcedId": sourced_id,
            "status": user.get("status"),
            "dateLastModified": user.get("dateLastModified"),
            "userSourcedId": user_id,
            "roleType": role.get("roleType"),
            "role": name,
            "beginDate": role.get("beginDate"),
            "endDate": role.get("endDate"),
            "orgSourcedId": org,
            "userProfileSourcedId": ref_id(role.get("userProfile")),
        }
        payload = payload_of(flat, ROLES_1_2_SPEC, bulk=bulk)
        shaped.append(Shaped(EntityType.ROLE, sourced_id, payload, _status(user)))
    return shaped


def _profiles(user: dict[str, Any], user_id: str, *, bulk: bool) -> list[Shaped]:
    shaped: list[Shaped] = []
    for profile in _items(user.get("userProfiles")):
        if not isinstance(profile, dict):
            continue
        sourced_id = text(profile.get("profileId")) or text(profile.get("sourcedId")) or ""
        credentials = [c for c in _items(profile.get("credentials")) if isinstance(c, dict)]
        first = credentials[0] if credentials else {}  # CSV has one credential per profile
        flat = {
            **profile,
            "sourcedId": sourced_id,
            "status": user.get("status"),
            "dateLastModified": user.get("dateLastModified"),
            "userSourcedId": user_id,
            "credentialType": profile.get("credentialType", first.get("type")),
            "username": profile.get("username", first.get("username")),
        }
        payload = payload_of(flat, USER_PROFILES_1_2, bulk=bulk)
        shaped.append(Shaped(EntityType.USER_PROFILE, sourced_id, payload, _status(user)))
    return shaped


def shape(obj: dict[str, Any], entity: EntityType, version: str, *, bulk: bool) -> list[Shaped]:
    """The records one JSON object of a collection becomes, in publishing order.

    1.2 users: the user, then its profiles (roles point at them), then its roles. The roles and
    profiles of a user being deleted are not sent: archiving a user archives them.
    """
    spec = spec_for(version, entity)
    sourced_id = text(obj.get("sourcedId")) or ""
    status = _status(obj)
    shaped = [Shaped(entity, sourced_id, payload_of(obj, spec, bulk=bulk), status)]
    if entity is EntityType.USER and version.startswith("1.2") and status == "active":
        shaped += _profiles(obj, sourced_id, bulk=bulk)
        shaped += _roles(obj, sourced_id, bulk=bulk)
    return shaped
