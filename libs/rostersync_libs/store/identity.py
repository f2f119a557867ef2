"""The mapper's side of the store: users it may re-key, the application directory it matches
against, and the claims that keep two mapper instances from giving one id to two records
(docs/identity.md). Until the tables exist, lookups find nothing."""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

import asyncpg

from rostersync_libs.events import EntityType
from rostersync_libs.identities import IdentityDecision, Key
from rostersync_libs.store.roster import Db

# users' columns a re-key may look a user up by, and the directory's a match rule may
USER_COLUMNS = frozenset({"username", "user_master_identifier", "identifier"})
DIRECTORY_COLUMNS = frozenset({"email", "username", "identifier", "nces_id"})

USERS_SQL = (
    "SELECT {column} AS value, sourced_id, internal_id FROM users"
    " WHERE tenant_id = $1 AND {column} = ANY($2::text[])"
)
DIRECTORY_SQL = (
    "SELECT {value} AS value, app_id FROM app_directory"
    " WHERE tenant_id = $1 AND entity = $2 AND {value} = ANY($3::text[])"
)
# A claim holds when the id was free or is already this record's, or when a re-key takes it from
# the record it re-keys (the person's id moves with them); another record's claim stays.
CLAIM_SQL = """
INSERT INTO identity_claims AS c
    (tenant_id, entity, internal_id, sourced_id, reason, decided_at, rekeyed_from)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::text[])
ON CONFLICT (tenant_id, entity, internal_id) DO UPDATE
    SET sourced_id = excluded.sourced_id, reason = excluded.reason,
        decided_at = excluded.decided_at, rekeyed_from = excluded.rekeyed_from
    WHERE c.sourced_id = excluded.sourced_id OR c.sourced_id = excluded.rekeyed_from
RETURNING tenant_id, entity, sourced_id
"""


class StoredUser(NamedTuple):
    value: str  # of the column looked up by
    sourced_id: str
    internal_id: UUID


class DirectoryEntry(NamedTuple):
    value: str  # of the column matched (an e-mail address in lower case)
    app_id: UUID


async def users_by(db: Db, tenant: str, column: str, values: list[str]) -> list[StoredUser]:
    """The tenant's users (archived too) whose ``column`` is one of ``values``."""
    assert column in USER_COLUMNS  # a column name goes into the SQL: only known ones
    try:
        rows = await db.fetch(USERS_SQL.format(column=column), tenant, values)
    except asyncpg.UndefinedTableError:
        return []
    return [StoredUser(r["value"], r["sourced_id"], r["internal_id"]) for r in rows]


async def directory(
    db: Db, tenant: str, entity: EntityType, column: str, values: list[str]
) -> list[DirectoryEntry]:
    """The directory's entries of the entity whose ``column`` is one of ``values`` (e-mail
    addresses compared in lower case)."""
    assert column in DIRECTORY_COLUMNS
    value = "lower(email)" if column == "email" else column
    try:
        rows = await db.fetch(DIRECTORY_SQL.format(value=value), tenant, entity.value, values)
    except asyncpg.UndefinedTableError:
        return []
    return [DirectoryEntry(r["value"], r["app_id"]) for r in rows]


async def claim(db: Db, decisions: list[IdentityDecision]) -> set[Key]:
    """Claims the decisions' ids; returns the keys whose claim holds."""
    if not decisions:
        return set()
    rows = await db.fetch(
        CLAIM_SQL,
        [d.tenant for d in decisions],
        [d.entity.value for d in decisions],
        [d.internal_id for d in decisions],
        [d.sourced_id for d in decisions],
        [d.reason.value for d in decisions],
        [d.decided_at for d in decisions],
        [d.rekeyed_from for d in decisions],
    )
    return {(r["tenant_id"], r["entity"], r["sourced_id"]) for r in rows}
