"""Link rows that belong to one record (a user's orgs and guardians, a class's terms).

They are replaced as a whole, and only for the records whose upsert actually changed a row: an
unchanged, older or redelivered record leaves its links alone. Deletes leave links in place
(archiving the owner is enough).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from rostersync_libs.events import EntityType, RecordEvent

from rostersync_writer.convert import text, uuid_list

LinkRows = Callable[[RecordEvent], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Link:
    table: str
    owner: str  # the column holding the owning record's internal id
    columns: tuple[tuple[str, str], ...]  # (name, SQL type) after tenant_id and owner
    rows_of: LinkRows  # values of ``columns`` for one record

    def delete_sql(self) -> str:
        """Remove the owners' ($1, $2) links that are not among their new ones ($3, $4, …): a link
        kept is not touched, so the change feed sees only links really added or removed."""
        names = [name for name, _ in self.columns]
        params = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, start=5))
        same = " AND ".join(f"n.{name} = t.{name}" for name in names)
        return (
            f"DELETE FROM {self.table} AS t USING unnest($1::text[], $2::uuid[]) AS o(tenant, id)"
            f" WHERE t.tenant_id = o.tenant AND t.{self.owner} = o.id AND NOT EXISTS (SELECT 1"
            f" FROM unnest($3::text[], $4::uuid[], {params}) AS n(tenant, owner, {', '.join(names)})"
            f" WHERE n.tenant = t.tenant_id AND n.owner = t.{self.owner} AND {same})"
        )

    def insert_sql(self) -> str:
        names = ", ".join(name for name, _ in self.columns)
        params = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, start=3))
        return (
            f"INSERT INTO {self.table} (tenant_id, {self.owner}, {names})"
            f" SELECT * FROM unnest($1::text[], $2::uuid[], {params}) ON CONFLICT DO NOTHING"
        )


def class_term_rows(event: RecordEvent) -> list[tuple[Any, ...]]:
    """The class's terms, from ``termSourcedIds``."""
    return [(term,) for term in uuid_list(event.payload.get("termInternalIds"))]


def user_org_rows(event: RecordEvent) -> list[tuple[Any, ...]]:
    """The user's (org, role) memberships, from 1.1 ``orgSourcedIds`` and ``role``."""
    # The canonical (1.2) role from the mapper; the role as sent stays in users.role.
    role = text(event.payload.get("canonicalRole")) or text(event.payload.get("role"))
    if role is None:  # 1.2 users: memberships are roles.csv records (user_roles)
        return []
    return [(org, role) for org in uuid_list(event.payload.get("orgInternalIds"))]


def guardian_rows(event: RecordEvent) -> list[tuple[Any, ...]]:
    """The user's agents (parents, guardians…), from ``agentSourcedIds``."""
    return [(agent,) for agent in uuid_list(event.payload.get("agentInternalIds"))]


LINKS: dict[EntityType, tuple[Link, ...]] = {
    EntityType.CLASS: (
        Link("class_terms", "class_internal_id", (("term_internal_id", "uuid"),), class_term_rows),
    ),
    EntityType.USER: (
        Link(
            "user_orgs",
            "user_internal_id",
            (("org_internal_id", "uuid"), ("role", "text")),
            user_org_rows,
        ),
        Link("guardian_links", "user_internal_id", (("agent_internal_id", "uuid"),), guardian_rows),
    ),
}


async def replace_links(
    conn: asyncpg.Connection, entity: EntityType, owners: list[RecordEvent]
) -> None:
    """Make these records' link rows the ones their events carry (removing and adding only
    what differs)."""
    if not owners:
        return
    for link in LINKS.get(entity, ()):
        rows = [(o.tenant, o.internal_id, *row) for o in owners for row in link.rows_of(o)]
        columns = [list(c) for c in zip(*rows, strict=True)] or [[] for _ in range(2 + len(link.columns))]  # fmt: skip
        await conn.execute(
            link.delete_sql(), [o.tenant for o in owners], [o.internal_id for o in owners], *columns
        )
        if rows:
            await conn.execute(link.insert_sql(), *columns)
