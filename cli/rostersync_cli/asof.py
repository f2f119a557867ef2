"""``rostersync asof TENANT INSTANT --class X``: a class's members at an instant (the roster
history, rostersync_libs/store/history.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from rostersync_libs.run_reports.status import EXIT_REFUSED
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store import history

from rostersync_cli.operations import on_connection
from rostersync_cli.text_tables import emit, format_table

COMMANDS = frozenset({"asof"})


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    asof = sub.add_parser("asof", help="a class's members at an instant (roster history)")
    asof.add_argument("tenant")
    asof.add_argument("instant", type=instant, help="ISO 8601, e.g. 2026-03-03T10:00Z (UTC if no zone)")  # fmt: skip
    asof.add_argument("--class", dest="class_ref", required=True,
                      help="the class's sourcedId or internal id")  # fmt: skip
    asof.add_argument("--json", action="store_true", help="print one JSON document")


def instant(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _members(
    conn: asyncpg.Connection, args: argparse.Namespace
) -> tuple[str | None, list[dict[str, Any]]]:
    found = await history.class_id(conn, args.tenant, args.class_ref)
    if found is None:
        return None, []
    return str(found), await history.enrollments_as_of(conn, args.tenant, found, args.instant)


def run_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    found, members = asyncio.run(on_connection(settings, lambda conn: _members(conn, args)))
    if found is None:
        print(f"rostersync: no class {args.class_ref} in tenant {args.tenant}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        emit({"tenant": args.tenant, "class_internal_id": found,
              "as_of": args.instant.isoformat(), "items": members})  # fmt: skip
        return 0
    print(f"Class {args.class_ref} of tenant {args.tenant} as of {args.instant.isoformat()}:")
    rows = [[m["sourced_id"], m["user_sourced_id"] or m["user_internal_id"] or "", m["role"] or ""]
            for m in members]  # fmt: skip
    print(format_table(["enrollment", "user", "role"], rows))
    return 0
