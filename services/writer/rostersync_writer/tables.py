"""How each entity's events become rows: the columns, and the version-guarded upsert.

An upsert changes a row only when its content differs (or it was archived), and never lets an
older source version overwrite a newer one, so redelivered and replayed events have no effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from rostersync_libs.envelope import EntityType, Envelope

RowOf = Callable[[Envelope], tuple[Any, ...]]

# Columns every roster table has, after the entity's own ones.
COMMON_COLUMNS = (
    "source_date_last_modified",
    "content_hash",
    "first_seen_run",
    "last_seen_run",
    "payload",
)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]  # after tenant_id, sourced_id, internal_id, source
    row_of: RowOf

    @property
    def all_columns(self) -> tuple[str, ...]:
        return ("tenant_id", "sourced_id", "internal_id", "source", *self.columns, *COMMON_COLUMNS)

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
            "archived_at = NULL, updated_at = now() "
            "WHERE (t.content_hash IS DISTINCT FROM excluded.content_hash"
            " OR t.archived_at IS NOT NULL OR t.last_seen_run <> excluded.last_seen_run)"
            " AND (t.source_date_last_modified IS NULL"
            " OR excluded.source_date_last_modified IS NULL"
            " OR excluded.source_date_last_modified >= t.source_date_last_modified)"
            " RETURNING t.internal_id"
        )

    def archive_sql(self) -> str:
        return (
            f"UPDATE {self.name} SET archived_at = now(), updated_at = now(),"
            " last_seen_run = $3, source_date_last_modified = COALESCE($4, source_date_last_modified)"
            " WHERE tenant_id = $1 AND sourced_id = $2 AND archived_at IS NULL"
            " AND ($4::timestamptz IS NULL OR source_date_last_modified IS NULL"
            " OR $4::timestamptz >= source_date_last_modified)"
        )

    def full_row(self, event: Envelope) -> tuple[Any, ...]:
        return (
            event.tenant,
            event.sourced_id,
            event.internal_id,
            event.source,
            *self.row_of(event),
            event.date_last_modified,
            event.content_hash,
            event.run_id,
            event.run_id,
            orjson.dumps(event.payload).decode(),
        )


def _org_row(event: Envelope) -> tuple[Any, ...]:
    p = event.payload
    return (p["name"], p["type"], p.get("identifier"), p.get("parentInternalId"))


def _user_row(event: Envelope) -> tuple[Any, ...]:
    p = event.payload
    return (
        p["enabledUser"] == "true",
        p["role"],
        p["username"],
        p["givenName"],
        p["familyName"],
        p.get("middleName"),
        p.get("identifier"),
        p.get("email"),
        p.get("grades", []),
    )


TABLES: dict[EntityType, Table] = {
    EntityType.ORG: Table(
        "orgs", ("name", "org_type", "identifier", "parent_internal_id"), _org_row
    ),
    EntityType.USER: Table(
        "users",
        (
            "enabled",
            "role",
            "username",
            "given_name",
            "family_name",
            "middle_name",
            "identifier",
            "email",
            "grades",
        ),
        _user_row,
    ),
}

REPLACE_USER_ORGS_DELETE = "DELETE FROM user_orgs WHERE tenant_id = $1 AND user_internal_id = $2"
REPLACE_USER_ORGS_INSERT = (
    "INSERT INTO user_orgs (tenant_id, user_internal_id, org_internal_id, role)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
)


def user_org_rows(event: Envelope) -> list[tuple[Any, ...]]:
    """The user's (org, role) memberships, from 1.1 ``orgSourcedIds`` and ``role``."""
    role = event.payload.get("role")
    return [
        (event.tenant, event.internal_id, org_id, role)
        for org_id in event.payload.get("orgInternalIds", [])
    ]
