"""``rostersync crosswalk …`` and ``rostersync directory …``: the operator's side of identity
resolution (docs/identity.md).

rostersync crosswalk add TENANT ENTITY SOURCED_ID APP_ID   this OneRoster record is that app record
rostersync crosswalk import TENANT FILE.csv                 many at once (entity,sourcedId,appId)
rostersync crosswalk list TENANT                            every identity decision of a tenant
rostersync directory import TENANT FILE.csv                 the application's records, for matching
                                       (entity,appId,email,username,identifier,ncesId; idempotent)

Crosswalk entries go to the identities topic (the mapper reads it); the directory goes to
PostgreSQL. Every function takes the settings, so tests call them directly.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from rostersync_libs.db import create_pool
from rostersync_libs.events import EntityType
from rostersync_libs.identities import IdentityDecision, Reason, load_decisions, publish
from rostersync_libs.kafka import ensure_topics, make_producer
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate
from rostersync_libs.tenants import TENANT_ID_PATTERN

from rostersync_cli.operations import data_keys

COMMANDS = frozenset({"crosswalk", "directory"})
CROSSWALK_COLUMNS = ("entity", "sourcedId", "appId")
DIRECTORY_COLUMNS = ("entity", "appId", "email", "username", "identifier", "ncesId")
# The match rules look these entities up in the directory.
DIRECTORY_ENTITIES = frozenset({EntityType.USER, EntityType.ORG})


class InputError(ValueError):
    """A command's input is wrong; the message says where."""


def _entity(value: str, where: str) -> EntityType:
    try:
        return EntityType(value.strip())
    except ValueError:
        known = ", ".join(e.value for e in EntityType)
        raise InputError(f"{where}: unknown entity {value!r} (one of {known})") from None


def _uuid(value: str, where: str) -> UUID:
    try:
        return UUID(value.strip())
    except ValueError:
        raise InputError(f"{where}: {value!r} is not a UUID") from None


def _tenant(tenant: str) -> str:
    if not re.match(TENANT_ID_PATTERN, tenant):
        raise InputError(f"{tenant!r} is not a tenant id")
    return tenant


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        return [(n, row) for n, row in enumerate(reader, start=2)]


# --- crosswalk ------------------------------------------------------------------------------


def _check_unique(
    tenant: str,
    entries: list[IdentityDecision],
    current: dict[tuple[str, str, str], IdentityDecision],
) -> None:
    """An app id is never given to two records of one entity of a tenant."""
    holders: dict[tuple[str, UUID], str] = {}
    new_keys = {e.map_key for e in entries}
    for decision in current.values():
        if decision.map_key not in new_keys:  # an entry replaced now no longer holds its id
            holders[(decision.entity.value, decision.internal_id)] = decision.sourced_id
    for entry in entries:
        holder = holders.setdefault((entry.entity.value, entry.internal_id), entry.sourced_id)
        if holder != entry.sourced_id:
            raise InputError(
                f"tenant {tenant}: app id {entry.internal_id} is already {entry.entity.value}"
                f" {holder!r}'s; one app record cannot be two OneRoster records"
            )


async def _publish_crosswalk(settings: ServiceSettings, entries: list[IdentityDecision]) -> None:
    await ensure_topics(settings)
    if not entries:
        return
    async with data_keys(settings) as keys:
        current = await load_decisions(settings, keys, entries[0].tenant)
        _check_unique(entries[0].tenant, entries, current)
        producer = make_producer(settings, "rostersync-cli-crosswalk", keys)
        try:
            await producer.start()
            await publish(producer, settings.topics.identities, entries)
        finally:
            await producer.stop()


async def crosswalk_add(
    settings: ServiceSettings, tenant: str, entity: str, sourced_id: str, app_id: str
) -> IdentityDecision:
    """Declare that a OneRoster record is a record the application already has."""
    entry = IdentityDecision(
        tenant=_tenant(tenant),
        entity=_entity(entity, "entity"),
        sourced_id=sourced_id,
        internal_id=_uuid(app_id, "app id"),
        reason=Reason.CROSSWALK,
    )
    await _publish_crosswalk(settings, [entry])
    return entry


async def crosswalk_import(settings: ServiceSettings, tenant: str, path: Path) -> int:
    """Crosswalk entries from a CSV with columns entity,sourcedId,appId; all or none."""
    _tenant(tenant)
    entries: dict[tuple[str, str, str], IdentityDecision] = {}
    for line, row in _rows(path, CROSSWALK_COLUMNS):
        where = f"{path.name} line {line}"
        sourced_id = (row["sourcedId"] or "").strip()
        if not sourced_id:
            raise InputError(f"{where}: sourcedId is empty")
        entry = IdentityDecision(
            tenant=tenant,
            entity=_entity(row["entity"] or "", where),
            sourced_id=sourced_id,
            internal_id=_uuid(row["appId"] or "", where),
            reason=Reason.CROSSWALK,
        )
        entries[entry.map_key] = entry  # a later line of the same record wins
    await _publish_crosswalk(settings, list(entries.values()))
    return len(entries)


async def crosswalk_list(settings: ServiceSettings, tenant: str) -> list[IdentityDecision]:
    """Every identity decision of a tenant (crosswalk, rekey, match), as the mapper sees them."""
    await ensure_topics(settings)
    async with data_keys(settings) as keys:
        decisions = await load_decisions(settings, keys, _tenant(tenant))
    return sorted(decisions.values(), key=lambda d: (d.entity.value, d.sourced_id))


def format_decisions(decisions: list[IdentityDecision]) -> str:
    if not decisions:
        return "no identity decisions"
    lines = [f"{'entity':<14}{'sourcedId':<28}{'internal id':<38}{'reason':<11}decided at"]
    for d in decisions:
        why = d.reason.value
        if d.rekeyed_from:
            why += f" (from {d.rekeyed_from})"
        elif d.rule:
            why += f" ({d.rule})"
        lines.append(
            f"{d.entity.value:<14}{d.sourced_id:<28}{d.internal_id!s:<38}{why:<11}"
            f" {d.decided_at:%Y-%m-%d %H:%M:%S}"
        )
    return "\n".join(lines)


# --- directory ------------------------------------------------------------------------------

UPSERT_DIRECTORY = """
INSERT INTO app_directory AS d (tenant_id, entity, app_id, email, username, identifier, nces_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id, entity, app_id) DO UPDATE
    SET email = excluded.email, username = excluded.username, identifier = excluded.identifier,
        nces_id = excluded.nces_id, updated_at = now()
    WHERE (d.email, d.username, d.identifier, d.nces_id)
          IS DISTINCT FROM (excluded.email, excluded.username, excluded.identifier, excluded.nces_id)
"""


@dataclass(frozen=True)
class DirectoryEntry:
    entity: EntityType
    app_id: UUID
    email: str | None
    username: str | None
    identifier: str | None
    nces_id: str | None


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


async def directory_import(settings: ServiceSettings, tenant: str, path: Path) -> int:
    """The application's records from a CSV (entity,appId,email,username,identifier,ncesId) into
    ``app_directory``: inserted or updated by (tenant, entity, appId); running it twice changes
    nothing. Returns the number of entries in the file."""
    _tenant(tenant)
    entries: dict[tuple[EntityType, UUID], DirectoryEntry] = {}
    for line, row in _rows(path, DIRECTORY_COLUMNS):
        where = f"{path.name} line {line}"
        entity = _entity(row["entity"] or "", where)
        if entity not in DIRECTORY_ENTITIES:
            raise InputError(f"{where}: the directory holds users and orgs, not {entity.value}")
        entry = DirectoryEntry(
            entity=entity,
            app_id=_uuid(row["appId"] or "", where),
            email=_blank(row["email"]),
            username=_blank(row["username"]),
            identifier=_blank(row["identifier"]),
            nces_id=_blank(row["ncesId"]),
        )
        entries[(entry.entity, entry.app_id)] = entry
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)  # the writer's schema (idempotent, serialised by a lock)
            async with conn.transaction():
                await conn.executemany(
                    UPSERT_DIRECTORY,
                    [
                        (tenant, e.entity.value, e.app_id, e.email, e.username, e.identifier,
                         e.nces_id)
                        for e in entries.values()
                    ],
                )  # fmt: skip
    finally:
        await pool.close()
    return len(entries)


# --- argument parsing -----------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``crosswalk`` and ``directory`` to the ``rostersync`` parser's sub-commands."""
    crosswalk = sub.add_parser("crosswalk", help="OneRoster records the application already has")
    cw = crosswalk.add_subparsers(dest="action", required=True)
    add = cw.add_parser("add", help="declare one record's application id")
    add.add_argument("tenant")
    add.add_argument("entity", choices=[e.value for e in EntityType])
    add.add_argument("sourced_id")
    add.add_argument("app_id")
    imp = cw.add_parser("import", help="declare many from a CSV (entity,sourcedId,appId)")
    imp.add_argument("tenant")
    imp.add_argument("file", type=Path)
    lst = cw.add_parser("list", help="every identity decision of a tenant")
    lst.add_argument("tenant")
    directory = sub.add_parser("directory", help="the application's records, for match rules")
    dr = directory.add_subparsers(dest="action", required=True)
    dimp = dr.add_parser(
        "import", help="load a CSV (entity,appId,email,username,identifier,ncesId)"
    )
    dimp.add_argument("tenant")
    dimp.add_argument("file", type=Path)


def run_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """Run a ``crosswalk`` or ``directory`` sub-command; 2 on bad input."""
    try:
        if args.command == "directory":
            n = asyncio.run(directory_import(settings, args.tenant, args.file))
            print(f"application directory of {args.tenant}: {n} entries imported")
        elif args.action == "add":
            entry = asyncio.run(
                crosswalk_add(settings, args.tenant, args.entity, args.sourced_id, args.app_id)
            )
            print(
                f"crosswalk: {entry.tenant} {entry.entity.value} {entry.sourced_id}"
                f" → {entry.internal_id}"
            )
        elif args.action == "import":
            n = asyncio.run(crosswalk_import(settings, args.tenant, args.file))
            print(f"crosswalk of {args.tenant}: {n} entries published")
        else:
            print(format_decisions(asyncio.run(crosswalk_list(settings, args.tenant))))
    except InputError as exc:
        print(f"rostersync: {exc}", file=sys.stderr)
        return 2
    return 0
