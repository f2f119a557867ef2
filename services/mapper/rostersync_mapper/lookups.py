"""The resolver's lookups in PostgreSQL: the writer's tables, the application directory, and the
claims that keep two mapper instances from giving one id to two records."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

import asyncpg
from rostersync_libs.envelope import EntityType
from rostersync_libs.identities import IdentityDecision, Key
from rostersync_libs.store.tables import ENTITY_TABLES
from rostersync_libs.tenants import RekeyKey

from rostersync_mapper.resolver import DIRECTORY_COLUMNS, REKEY_COLUMNS, ExistingUser, Rule

KNOWN_SQL = "SELECT sourced_id FROM {table} WHERE tenant_id = $1 AND sourced_id = ANY($2::text[])"
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


class PgLookups:
    """:class:`rostersync_mapper.resolver.Lookups` on the deployment's PostgreSQL schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def known(self, keys: set[Key]) -> set[Key]:
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for tenant, entity, sourced_id in keys:
            if entity in ENTITY_TABLES:
                grouped[(tenant, entity)].append(sourced_id)
        found: set[Key] = set()
        async with self._pool.acquire() as conn:
            for (tenant, entity), ids in grouped.items():
                sql = KNOWN_SQL.format(table=ENTITY_TABLES[entity])
                try:
                    rows = await conn.fetch(sql, tenant, ids)
                except asyncpg.UndefinedTableError:
                    continue  # nothing written yet: nothing is known
                found.update((tenant, entity, r["sourced_id"]) for r in rows)
        return found

    async def users_by(
        self, tenant: str, key: RekeyKey, values: set[str]
    ) -> dict[str, list[ExistingUser]]:
        sql = USERS_SQL.format(column=REKEY_COLUMNS[key])
        found: dict[str, list[ExistingUser]] = defaultdict(list)
        async with self._pool.acquire() as conn:
            try:
                rows = await conn.fetch(sql, tenant, list(values))
            except asyncpg.UndefinedTableError:
                return {}
        for row in rows:
            found[row["value"]].append(ExistingUser(row["sourced_id"], row["internal_id"]))
        return dict(found)

    async def directory(
        self, tenant: str, entity: EntityType, rule: Rule, values: set[str]
    ) -> dict[str, list[UUID]]:
        column = DIRECTORY_COLUMNS[rule]
        value = "lower(email)" if column == "email" else column
        found: dict[str, list[UUID]] = defaultdict(list)
        async with self._pool.acquire() as conn:
            try:
                rows = await conn.fetch(
                    DIRECTORY_SQL.format(value=value), tenant, entity.value, list(values)
                )
            except asyncpg.UndefinedTableError:
                return {}
        for row in rows:
            found[row["value"]].append(row["app_id"])
        return dict(found)

    async def claim(self, decisions: list[IdentityDecision]) -> set[Key]:
        if not decisions:
            return set()
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
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
