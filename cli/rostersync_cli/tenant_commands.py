"""``rostersync tenants purge TENANT``: erase a district (purge.py says what it guarantees)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

from rostersync_libs.settings import ServiceSettings
from rostersync_libs.tenants import TENANT_ID_PATTERN

from rostersync_cli.documents import emit
from rostersync_cli.purge import purge
from rostersync_cli.status import EXIT_REFUSED

COMMANDS = frozenset({"tenants"})


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenants = sub.add_parser("tenants", help="erase a district's data (purge)")
    actions = tenants.add_subparsers(dest="action", required=True)
    erase = actions.add_parser(
        "purge",
        help="destroy a tenant's data key (its events on every topic become unreadable),"
        " delete its rows, withdraw its identity decisions; its id is retired",
    )
    erase.add_argument("tenant")
    erase.add_argument("--yes", action="store_true", help="do it (without: say what it would do)")
    erase.add_argument("--json", action="store_true", help="print one JSON document")


def run_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    if not re.fullmatch(TENANT_ID_PATTERN, args.tenant):
        print(f"rostersync: {args.tenant!r} is not a tenant id", file=sys.stderr)
        return EXIT_REFUSED
    if not args.yes:
        print(
            f"tenants purge {args.tenant}: destroys the tenant's data key (every event of it on"
            " every topic becomes unreadable, replays included), deletes its rows from every"
            f" table of schema {settings.db_schema}, withdraws its identity decisions and fetch"
            " state; the id cannot be used again. Nothing done: add --yes to purge.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    done = asyncio.run(purge(settings, args.tenant))
    if args.json:
        emit({"tenant": done.tenant, "rows": done.rows, "tombstones": done.tombstones})
        return 0
    print(f"tenant {done.tenant} purged: data key destroyed")
    for table, count in sorted(done.rows.items()):
        if count:
            print(f"  {table:<24}{count:>10,} rows deleted")
    for topic, count in done.tombstones.items():
        if count:
            print(f"  {topic:<40}{count:>10,} keys withdrawn")
    print("remove it from the tenants file: a sync of it is refused from now on")
    return 0
