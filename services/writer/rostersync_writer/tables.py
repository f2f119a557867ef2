"""How each entity's events become rows: the columns, and the version-guarded upsert.

An upsert changes a row only when its content differs (or it was archived), and never lets an
older source version overwrite a newer one, so redelivered and replayed events have no effect.
Typed columns are pulled from the payload (keyed by OneRoster CSV column names, references
resolved by the mapper to ``…InternalId(s)``); the whole payload is kept as jsonb.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

from rostersync_libs.events import EntityType, RecordEvent
from rostersync_libs.store.tables import ROSTER_TABLES

from rostersync_writer.convert import (
    Convert,
    boolean,
    day,
    payload_json,
    text,
    text_list,
    uuid,
    year,
)

# Columns every roster table has, after the entity's own ones.
COMMON_COLUMNS = (
    "source_date_last_modified",
    "content_hash",
    "first_seen_run",
    "last_seen_run",
    "payload",
)


@dataclass(frozen=True)
class Field:
    """One typed column and the payload value it is converted from."""

    column: str
    key: str
    convert: Convert = text


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]  # after tenant_id, sourced_id, internal_id, source

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.fields)

    @property
    def all_columns(self) -> tuple[str, ...]:
        return ("tenant_id", "sourced_id", "internal_id", "source", *self.columns, *COMMON_COLUMNS)

    @cached_property
    def _converters(self) -> tuple[tuple[Convert, str], ...]:
        return tuple((f.convert, f.key) for f in self.fields)

    def typed_row(self, payload: Mapping[str, Any]) -> tuple[Any, ...]:
        """The typed columns of one record; what does not convert is NULL."""
        get = payload.get
        return tuple([convert(get(key)) for convert, key in self._converters])

    def upsert_sql(self, stage: str) -> str:
        """Move staged rows into the table; returns the internal ids of rows that changed."""
        cols = self.all_columns
        updates = ", ".join(
            f"{c} = excluded.{c}"
            for c in cols
            if c not in ("tenant_id", "sourced_id", "first_seen_run")
        )
        return (
            f"INSERT INTO {self.name} AS t ({', '.join(cols)}) "
            f"SELECT {', '.join(cols)} FROM {stage} "
            f"ON CONFLICT (tenant_id, sourced_id) DO UPDATE SET {updates}, "
            # updated_at is the application's "what changed since" column: a record that was
            # only seen again (last_seen_run) keeps it.
            "archived_at = NULL, updated_at = CASE WHEN t.content_hash IS DISTINCT FROM"
            " excluded.content_hash OR t.archived_at IS NOT NULL THEN now() ELSE t.updated_at END "
            "WHERE (t.content_hash IS DISTINCT FROM excluded.content_hash"
            " OR t.archived_at IS NOT NULL OR t.last_seen_run <> excluded.last_seen_run)"
            " AND (t.source_date_last_modified IS NULL"
            " OR excluded.source_date_last_modified IS NULL"
            " OR excluded.source_date_last_modified >= t.source_date_last_modified)"
            " RETURNING t.internal_id"
        )

    def rekey_sql(self) -> str:
        """Move the row holding an internal id ($2) to its new sourcedId ($3)."""
        return (
            f"UPDATE {self.name} AS t SET sourced_id = $3 WHERE t.tenant_id = $1"
            " AND t.internal_id = $2 AND t.sourced_id <> $3"
            f" AND NOT EXISTS (SELECT 1 FROM {self.name} x WHERE x.tenant_id = $1 AND x.sourced_id = $3)"
        )

    def full_row(self, event: RecordEvent, first_seen_run: UUID | None = None) -> tuple[Any, ...]:
        return (
            event.tenant,
            event.sourced_id,
            event.internal_id,
            event.source,
            *self.typed_row(event.payload),
            event.date_last_modified,
            event.content_hash,
            first_seen_run or event.run_id,
            event.run_id,
            payload_json(event.payload),
        )


F = Field

# Each entity's table is named in the store's registry; its columns are the writer's concern.
TABLES: dict[EntityType, Table] = {
    EntityType.ORG: Table(
        ROSTER_TABLES[EntityType.ORG],
        (
            F("name", "name"),
            F("org_type", "type"),
            F("identifier", "identifier"),
            F("parent_internal_id", "parentInternalId", uuid),
        ),
    ),
    EntityType.ACADEMIC_SESSION: Table(
        ROSTER_TABLES[EntityType.ACADEMIC_SESSION],
        (
            F("title", "title"),
            F("session_type", "type"),
            F("start_date", "startDate", day),
            F("end_date", "endDate", day),
            F("parent_internal_id", "parentInternalId", uuid),
            F("school_year", "schoolYear", year),
        ),
    ),
    EntityType.COURSE: Table(
        ROSTER_TABLES[EntityType.COURSE],
        (
            F("title", "title"),
            F("course_code", "courseCode"),
            F("grades", "grades", text_list),
            F("org_internal_id", "orgInternalId", uuid),
            F("school_year_internal_id", "schoolYearInternalId", uuid),
            F("subjects", "subjects", text_list),
        ),
    ),
    EntityType.CLASS: Table(
        ROSTER_TABLES[EntityType.CLASS],
        (
            F("title", "title"),
            F("class_code", "classCode"),
            F("class_type", "classType"),
            F("location", "location"),
            F("course_internal_id", "courseInternalId", uuid),
            F("school_internal_id", "schoolInternalId", uuid),
            F("grades", "grades", text_list),
            F("subjects", "subjects", text_list),
            F("periods", "periods", text_list),
        ),
    ),
    EntityType.USER: Table(
        ROSTER_TABLES[EntityType.USER],
        (
            F("enabled", "enabledUser", boolean),
            F("role", "role"),  # 1.1 only: 1.2 roles come as roles.csv records
            F("username", "username"),
            F("given_name", "givenName"),
            F("family_name", "familyName"),
            F("middle_name", "middleName"),
            F("identifier", "identifier"),
            F("email", "email"),
            F("grades", "grades", text_list),
            F("user_master_identifier", "userMasterIdentifier"),
            F("preferred_given_name", "preferredGivenName"),
            F("preferred_family_name", "preferredFamilyName"),
            F("primary_org_internal_id", "primaryOrgInternalId", uuid),
        ),
    ),
    EntityType.ENROLLMENT: Table(
        ROSTER_TABLES[EntityType.ENROLLMENT],
        (
            F("class_internal_id", "classInternalId", uuid),
            F("school_internal_id", "schoolInternalId", uuid),
            F("user_internal_id", "userInternalId", uuid),
            F("role", "role"),
            F("is_primary", "primary", boolean),
            F("begin_date", "beginDate", day),
            F("end_date", "endDate", day),
        ),
    ),
    EntityType.DEMOGRAPHIC: Table(
        ROSTER_TABLES[EntityType.DEMOGRAPHIC],
        (
            F("user_internal_id", "userInternalId", uuid),
            F("birth_date", "birthDate", day),
            F("sex", "sex"),
        ),
    ),
    EntityType.USER_PROFILE: Table(
        ROSTER_TABLES[EntityType.USER_PROFILE],
        (
            F("user_internal_id", "userInternalId", uuid),
            F("profile_type", "profileType"),
            F("vendor_id", "vendorId"),
            F("application_id", "applicationId"),
            F("credential_type", "credentialType"),
            F("username", "username"),
        ),
    ),
    EntityType.ROLE: Table(
        ROSTER_TABLES[EntityType.ROLE],
        (
            F("user_internal_id", "userInternalId", uuid),
            F("org_internal_id", "orgInternalId", uuid),
            F("role_type", "roleType"),
            F("role", "role"),
            F("begin_date", "beginDate", day),
            F("end_date", "endDate", day),
            F("user_profile_internal_id", "userProfileInternalId", uuid),
        ),
    ),
}
