"""``rostersync tenants purge TENANT``: erase a district (purge.py says what it guarantees)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

from rostersync_libs.data_keys import master_key, rewrap
from rostersync_libs.run_reports.status import EXIT_REFUSED
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.tenants import TENANT_ID_PATTERN

from rostersync_cli import tenants_file
from rostersync_cli.operations import on_connection
from rostersync_cli.purge import purge
from rostersync_cli.text_tables import emit

COMMANDS = frozenset({"tenants"})


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenants = sub.add_parser(
        "tenants", help="tenants files in and out of the admin API; erase a district (purge)"
    )
    actions = tenants.add_subparsers(dest="action", required=True)
    erase = actions.add_parser(
        "purge",
        help="destroy a tenant's data key (its events on every topic become unreadable),"
        " delete its rows, withdraw its identity decisions; its id is retired",
    )
    erase.add_argument("tenant")
    erase.add_argument("--yes", action="store_true", help="do it (without: say what it would do)")
    erase.add_argument("--json", action="store_true", help="print one JSON document")
    check = actions.add_parser("check", help="say what is wrong in a tenants file (line and key)")
    check.add_argument("file", type=Path)
    imported = actions.add_parser(
        "import", help="store a tenants file's tenants as the admin API's (new or replaced)"
    )
    imported.add_argument("file", type=Path)
    exported = actions.add_parser("export", help="the admin API's tenants as a tenants file")
    exported.add_argument("file", type=Path, nargs="?", help="default: standard output")
    rotate = actions.add_parser(
        "rewrap-keys",
        help="wrap every tenant's data key with the master key now configured"
        " (ROSTERSYNC_MASTER_KEY_FILE): master key rotation",
    )
    rotate.add_argument(
        "--old-master-key-file", type=Path, default=None,
        help="the master key the data keys are wrapped with now (omit if they are unwrapped)",
    )  # fmt: skip


def run_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    if args.action == "rewrap-keys":
        return asyncio.run(rewrap_keys(settings, args.old_master_key_file))
    if args.action in ("check", "import"):
        found = tenants_file.problems(args.file)
        for problem in found:
            print(problem, file=sys.stderr)
        if found:
            return EXIT_REFUSED
        if args.action == "check":
            print(f"{args.file}: valid")
            return 0
        ids = asyncio.run(on_connection(
            settings, lambda conn: tenants_file.import_file(conn, settings.control, args.file)
        ))  # fmt: skip
        print(f"imported {len(ids)} tenant(s): {', '.join(ids)}")
        return 0
    if args.action == "export":
        text = asyncio.run(
            on_connection(settings, lambda conn: tenants_file.export_toml(conn, settings.control))
        )
        if args.file is None:
            sys.stdout.write(text)
        else:
            args.file.write_text(text)
        return 0
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


async def rewrap_keys(settings: ServiceSettings, old_file: Path | None) -> int:
    new = master_key(settings)
    if new is None:
        print(
            "rostersync: set ROSTERSYNC_MASTER_KEY_FILE (or ROSTERSYNC_MASTER_KEY) to the new"
            " master key first",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    old = master_key(ServiceSettings(master_key_file=old_file)) if old_file else None
    count = await on_connection(settings, lambda conn: rewrap(conn, settings.control, old, new))
    print(f"{count} data keys wrapped with the new master key; restart the services with it")
    return 0
