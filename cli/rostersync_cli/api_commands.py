"""``rostersync api token create|list|revoke``: the admin API's tokens (services/api).

A token is printed once, when it is made; only its hash is kept. ``--expires-in 30d`` makes one
that the API refuses (401 ``token_expired``) from then on. ``serve`` starts the API too and, on a
deployment without any token, makes a first admin token and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import timedelta
from typing import Any, get_args
from uuid import UUID

import asyncpg
from rostersync_api.auth import Role, create_token
from rostersync_libs.run_reports.status import EXIT_REFUSED
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migrate

from rostersync_cli.operations import on_connection
from rostersync_cli.text_tables import format_table

COMMANDS = frozenset({"api"})
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def lifetime(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: how long a token lives."""
    found = re.fullmatch(r"([1-9][0-9]{0,5})([mhdw])", text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: a number and m, h, d or w (e.g. 30d)")
    return timedelta(**{UNITS[found[2]]: int(found[1])})


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = sub.add_parser("api", help="the admin API's tokens")
    tokens = api.add_subparsers(dest="action", required=True)
    create = tokens.add_parser("token", help="make, list or revoke API tokens")
    verbs = create.add_subparsers(dest="verb", required=True)
    new = verbs.add_parser("create", help="make a token (printed once)")
    new.add_argument("--name", required=True, help="who or what uses it")
    new.add_argument("--role", choices=get_args(Role), required=True)
    new.add_argument("--tenant", action="append", default=None,
                     help="limit it to this tenant (repeatable; default: every tenant)")  # fmt: skip
    new.add_argument("--expires-in", type=lifetime, metavar="DURATION",
                     help="refused from then on: 90m, 12h, 30d, 2w (default: never)")  # fmt: skip
    verbs.add_parser("list", help="every token (never the token itself)")
    revoke = verbs.add_parser("revoke", help="a revoked token is refused from now on")
    revoke.add_argument("token_id", type=UUID)


async def ensure_tables(conn: asyncpg.Connection, settings: ServiceSettings) -> None:
    await migrate(conn)  # a no-op once migrated (whoever started first did it)


async def first_admin_token(settings: ServiceSettings) -> str | None:
    """A first admin token when the deployment has none (``serve`` prints it); else None."""

    async def work(conn: asyncpg.Connection) -> str | None:
        await ensure_tables(conn, settings)
        if await conn.fetchval(f'SELECT count(*) FROM "{settings.control}".api_tokens'):
            return None
        return (await create_token(conn, settings.control, "first admin", "admin", None))[1]

    return await on_connection(settings, work)


def run_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    return asyncio.run(on_connection(settings, lambda conn: _run(conn, settings, args)))


async def _run(
    conn: asyncpg.Connection, settings: ServiceSettings, args: argparse.Namespace
) -> int:
    await ensure_tables(conn, settings)
    table = f'"{settings.control}".api_tokens'
    if args.verb == "create":
        token_id, token = await create_token(
            conn, settings.control, args.name, args.role, args.tenant, args.expires_in
        )
        print(f"token {token_id} ({args.role}): {token}")
        if args.expires_in is not None:
            expires = await conn.fetchval(
                f"SELECT expires_at FROM {table} WHERE token_id = $1", token_id
            )
            print(f"it expires at {expires:%Y-%m-%d %H:%M %Z}", file=sys.stderr)
        print("keep it now: it is not shown again", file=sys.stderr)
        return 0
    if args.verb == "revoke":
        done = await conn.execute(
            f"UPDATE {table} SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL",
            args.token_id,
        )
        if done == "UPDATE 0":
            print(f"rostersync: no active token {args.token_id}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"token {args.token_id} revoked")
        return 0
    rows: list[Any] = await conn.fetch(
        "SELECT token_id, name, role, tenants, created_at, revoked_at, expires_at,"
        f" expires_at <= now() AS expired FROM {table} ORDER BY created_at"
    )
    print(format_table(
        ["token id", "name", "role", "tenants", "created", "expires", "revoked"],
        [[str(r["token_id"]), r["name"], r["role"], ",".join(r["tenants"] or ["all"]),
          f"{r['created_at']:%Y-%m-%d %H:%M}", _expiry(r),
          f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else ""]
         for r in rows],
    ))  # fmt: skip
    return 0


def _expiry(row: Any) -> str:
    if row["expires_at"] is None:
        return "never"
    return f"{row['expires_at']:%Y-%m-%d %H:%M}" + (" (expired)" if row["expired"] else "")
