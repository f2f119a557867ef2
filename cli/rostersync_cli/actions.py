"""What each ``rostersync`` sub-command does (the argument parsing lives in ``__main__``)."""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import rostersync_localstack as localstack
from pydantic import SecretStr
from rostersync_api.settings import ApiSettings
from rostersync_libs.commands import SyncRequested
from rostersync_libs.db import create_pool
from rostersync_libs.kafka import ensure_topics
from rostersync_libs.run_reports import queries, validation
from rostersync_libs.run_reports.status import EXIT_NOT_FINISHED, EXIT_REFUSED, RunState, RunStatus
from rostersync_libs.store.runs import tenant_has_runs
from rostersync_libs.tenant_registry import registered_with_file
from rostersync_libs.tenants import CsvSource, load_tenants
from rostersync_localstack.stack import info as stack_info

from rostersync_cli import api_commands
from rostersync_cli.operations import known_tenants, on_connection, send_command
from rostersync_cli.processes import SERVICES, running_services
from rostersync_cli.progress import ProgressLine
from rostersync_cli.settings import SAMPLE_TENANTS, CliSettings, servers_configured
from rostersync_cli.text_tables import format_table


def resolve_settings(*, start_stack: bool) -> CliSettings:
    """The CLI's settings; without configured servers, the local stack's (started if asked)."""
    settings = CliSettings()
    if not servers_configured():
        info = localstack.up() if start_stack else stack_info()
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": info.kafka_bootstrap,
                "database_url": SecretStr(info.database_url),
            }
        )
    return settings


async def request_sync(
    settings: CliSettings,
    tenant: str,
    source: str | None,
    *,
    resend_unchanged: bool = False,
    full: bool = False,
    bundle: str | None = None,
) -> SyncRequested:
    """Audit a sync command for one tenant and put it on the command topic (KeyError: refused,
    and why)."""
    # Fail early, here, on an unknown tenant or source, or a bundle its source cannot read.
    chosen = (await known_tenants(settings, settings.tenants_file)).get(tenant).find_source(source)
    if bundle is not None and not isinstance(chosen, CsvSource):
        raise KeyError(f"source {chosen.id} of tenant {tenant} is not a csv source (--bundle)")
    command = SyncRequested(
        tenant=tenant, source=source, resend_unchanged=resend_unchanged, full=full, bundle=bundle
    )
    await send_command(settings, command)
    return command


async def print_run_report(
    settings: CliSettings, tenant: str, run_id: UUID, limit: int, csv_path: Path | None = None
) -> int:
    """What a run fetched, what it found wrong, and what is in PostgreSQL now.

    Returns the exit code of the run's status (``status.EXIT_CODES``), or ``EXIT_REFUSED`` (with
    a one-line message) when the tenant or the run is unknown.
    """
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            run = await validation.run_summary(conn, tenant, run_id)
            if run is None:
                why = await _unknown_run(conn, settings, tenant, run_id)
                print(f"rostersync: {why}", file=sys.stderr)
                return EXIT_REFUSED
            state = RunState.of(run)
            _print_run_header(run_id, tenant, run, state)
            files = await validation.by_file(conn, tenant, run_id)
            counts = orjson.loads(run["file_counts"] or "{}")
            print("\n" + format_table(
                ["file", "rows", "errors", "warnings", "rejected records"],
                [[file or "(run)", "" if rows is None else str(rows), str(errors), str(warnings),
                  str(rejected)]
                 for file, rows, errors, warnings, rejected
                 in validation.file_totals(files, counts)],
            ))  # fmt: skip
            codes = await validation.by_code(conn, tenant, run_id)
            if codes:
                print("\n" + format_table(
                    ["finding", "severity", "count"],
                    [[c["code"], c["severity"], str(c["n"])] for c in codes],
                ))  # fmt: skip
                print(f"\nFirst {limit} of each finding:")
                for finding in await validation.first_of_each_code(conn, tenant, run_id, limit):
                    print("  " + validation.describe(finding))
            if csv_path is not None:
                await validation.export_csv(conn, tenant, run_id, csv_path)
                print(f"\nall findings written to {csv_path}")
            rows = await queries.landed(conn, tenant)
            print(f"\nRows in PostgreSQL for tenant {tenant} (schema {settings.db_schema}):")
            print(format_table(
                ["table", "active", "archived"],
                [[r["entity"], str(r["active"]), str(r["archived"])] for r in rows],
            ))  # fmt: skip
    finally:
        await pool.close()
    return state.exit_code


async def _unknown_run(
    conn: asyncpg.Connection, settings: CliSettings, tenant: str, run_id: UUID
) -> str:
    """Why there is no report: the tenant is unknown altogether, or only the run is."""
    if not await tenant_has_runs(conn, tenant):
        try:
            (await registered_with_file(conn, settings.control, settings.tenants_file)).tenants.get(
                tenant
            )
        except KeyError as exc:
            return str(exc.args[0])
        except (OSError, ValueError):
            return f"no runs of tenant {tenant!r} (and no tenants file {settings.tenants_file})"
    return f"no run {run_id} for tenant {tenant}"


def _print_run_header(run_id: UUID, tenant: str, run: Any, state: RunState) -> None:
    version = run["oneroster_version"] or "?"
    print(f"Run {run_id} of tenant {tenant}: {state.status} (fetch {run['fetch_status'] or '?'},"
          f" OneRoster {version})")  # fmt: skip
    if run["fetch_error"]:
        print(f"  the source could not be read: {run['fetch_error']}")
    elif state.status is RunStatus.HELD:
        print(f"  held: {state.detail}; nothing is archived until"
              f" `rostersync holds approve|discard {tenant} {run_id}`")  # fmt: skip
    elif state.status is RunStatus.FAILED:
        print(f"  failed: {state.detail}")
    elif state.detail:
        print(f"  {state.detail}")
    for name, why in orjson.loads(run["skipped_files"] or "{}").items():
        print(f"  skipped {name}: {why}")
    unchanged = orjson.loads(run["unchanged_counts"] or "{}")
    if unchanged:
        listed = ", ".join(f"{entity} {n:,}" for entity, n in sorted(unchanged.items()))
        print(f"  already held unchanged (sent as lists, rows not rewritten): {listed}")
    skipped = orjson.loads(run["skipped_by_selection"] or "{}")
    if skipped:
        listed = ", ".join(f"{name} {n:,}" for name, n in sorted(skipped.items()))
        print(f"  outside the source's selection (skipped, not rejected): {listed}")
    trimmed = orjson.loads(run["trimmed_by_selection"] or "{}")
    if trimmed:
        listed = ", ".join(f"{name} {n:,}" for name, n in sorted(trimmed.items()))
        print(f"  references to records outside the selection left out: {listed}")


async def print_runs(settings: CliSettings, tenant: str | None, limit: int) -> None:
    runs = await on_connection(settings, partial(queries.list_runs, tenant=tenant, limit=limit))
    print(
        format_table(
            ["run", "tenant", "source", "status", "started", "published", "unchanged", "rejected",
             "note"],
            [
                [
                    str(r["run_id"]),
                    r["tenant_id"],
                    r["source"],
                    str(state.status),
                    r["first_event_at"].strftime("%Y-%m-%d %H:%M:%S"),
                    str(r["published_counts"]),
                    str(sum(orjson.loads(r["unchanged_counts"] or "{}").values())),
                    str(r["rejected"]),
                    _shorten(state.detail),
                ]
                for r in runs
                for state in [RunState.of(r)]
            ],
        )
    )  # fmt: skip


def _shorten(text: str, width: int = 70) -> str:
    """One table cell on one line (a failure's reason can be a long, multi-line message)."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


async def wait_and_report(settings: CliSettings, command: SyncRequested, timeout: float) -> int:
    shown = ProgressLine(settings, command.tenant, command.run_id)
    status = await on_connection(
        settings,
        partial(queries.wait_for_run, tenant=command.tenant, run_id=command.run_id,
                timeout=timeout, on_tick=shown.tick),
    )  # fmt: skip
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    if status is None:
        print(
            f"run {command.run_id} did not finish within {timeout:.0f} s; it goes on"
            f" (rostersync report {command.tenant} {command.run_id})",
            file=sys.stderr,
        )
        return EXIT_NOT_FINISHED
    return await print_run_report(settings, command.tenant, command.run_id, limit=5)


def announce_api(settings: CliSettings) -> None:
    """Where the admin API listens, and a first admin token when the deployment has none."""
    api = ApiSettings()
    print(f"admin API: http://{api.api_host}:{api.api_port}/docs (rostersync api token create)")
    first = asyncio.run(api_commands.first_admin_token(settings))
    if first is not None:
        print(f"first admin token (shown once): {first}")


def demo(timeout: float) -> int:
    """The main job on the local default stack: services up, sample district synced, summary."""
    settings = resolve_settings(start_stack=True)
    if not settings.tenants_file.exists():
        settings = settings.model_copy(update={"tenants_file": SAMPLE_TENANTS})
    tenant = load_tenants(settings.tenants_file).tenants[0].id
    print(f"Kafka {settings.kafka_bootstrap_servers}, PostgreSQL schema {settings.db_schema}")
    asyncio.run(ensure_topics(settings))
    with running_services(settings, (*SERVICES, "api")):
        announce_api(settings)
        command = asyncio.run(request_sync(settings, tenant, None))
        print(f"sync of tenant {tenant} requested (run {command.run_id}); waiting for the writer")
        return asyncio.run(wait_and_report(settings, command, timeout))
