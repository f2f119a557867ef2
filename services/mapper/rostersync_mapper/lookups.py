"""The resolver's lookups, in the store: the roster tables, the application directory, and the
claims that keep two mapper instances from giving one id to two records."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

import asyncpg
from rostersync_libs.events import EntityType
from rostersync_libs.identities import IdentityDecision, Key
from rostersync_libs.store import identity, roster
from rostersync_libs.tenants import RekeyKey

from rostersync_mapper.resolver import DIRECTORY_COLUMNS, REKEY_COLUMNS, ExistingUser, Rule


class PgLookups:
    """:class:`rostersync_mapper.resolver.Lookups` on the deployment's PostgreSQL schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def known(self, keys: set[Key]) -> set[Key]:
        """The keys the tenant's tables hold (archived rows too)."""
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for tenant, entity, sourced_id in keys:
            grouped[(tenant, entity)].append(sourced_id)
        found: set[Key] = set()
        async with self._pool.acquire() as conn:
            for (tenant, entity), ids in grouped.items():
                known = await roster.known_ids(conn, tenant, entity, ids, active_only=False)
                found.update((tenant, entity, sourced_id) for sourced_id in known)
        return found

    async def users_by(
        self, tenant: str, key: RekeyKey, values: set[str]
    ) -> dict[str, list[ExistingUser]]:
        found: dict[str, list[ExistingUser]] = defaultdict(list)
        for user in await identity.users_by(self._pool, tenant, REKEY_COLUMNS[key], list(values)):
            found[user.value].append(ExistingUser(user.sourced_id, user.internal_id))
        return dict(found)

    async def directory(
        self, tenant: str, entity: EntityType, rule: Rule, values: set[str]
    ) -> dict[str, list[UUID]]:
        found: dict[str, list[UUID]] = defaultdict(list)
        column = DIRECTORY_COLUMNS[rule]
        for entry in await identity.directory(self._pool, tenant, entity, column, list(values)):
            found[entry.value].append(entry.app_id)
        return dict(found)

    async def claim(self, decisions: list[IdentityDecision]) -> set[Key]:
        return await identity.claim(self._pool, decisions)
