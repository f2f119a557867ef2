"""``rostersync``: the operator's command.

rostersync demo                 set up the local stack, run the services, load the sample district
rostersync stack up|down|status|reset  the local Kafka + PostgreSQL (no Docker needed)
rostersync serve                run the four services and the admin API until Ctrl-C
rostersync sync TENANT [--wait] ask the fetcher to sync a tenant now
rostersync runs [list|cancel TENANT RUN_ID]  recent sync runs; cancel one
rostersync report TENANT RUN_ID what a run landed and what it rejected
rostersync holds [list|approve|discard TENANT RUN_ID]  runs held by the safety threshold
rostersync replay SCHEMA [--compare]  rebuild a fresh schema from the retained topics
rostersync generate OUT         write a synthetic district (or a delta of one) as a bundle
rostersync lag [--partitions] [--json]  how far behind each service is
rostersync crosswalk add|import|list  OneRoster records the application already has
rostersync directory import TENANT FILE  the application's records, for match rules
rostersync tenants check|import|export|purge|rewrap-keys  tenants files, erasing a district
rostersync api token create|list|revoke  tokens of the admin API
rostersync asof TENANT INSTANT --class X  a class's members at an instant (roster history)

``sync --wait`` and ``report`` exit with the run's status (``rostersync_libs.run_reports.status``): 0 completed, 1 failed,
3 held, 4 discarded, 5 not finished, 6 cancelled; 2 when the command itself did nothing; 7 when
Kafka or PostgreSQL does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from uuid import UUID

import asyncpg
import rostersync_localstack as localstack
from aiokafka.errors import KafkaError
from rostersync_libs.commands import SyncRequested
from rostersync_libs.data_keys import TenantPurgedError
from rostersync_libs.run_reports.status import EXIT_NOT_FINISHED, EXIT_REFUSED, EXIT_UNAVAILABLE

from rostersync_cli import (
    actions,
    api_commands,
    asof,
    identity_commands,
    lag,
    scripted,
    tenant_commands,
)
from rostersync_cli.cancel import cancel_refusal, send_cancel, wait_for_end
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.generate_delta import generate_delta
from rostersync_cli.holds import decide, print_holds, refusal
from rostersync_cli.processes import SERVICES, Supervisor
from rostersync_cli.replay import compare, replay
from rostersync_cli.settings import CliSettings
from rostersync_cli.text_tables import emit
from rostersync_cli.unavailable import unavailable_message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rostersync", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="load the sample district end to end and print what landed")
    demo.add_argument("--timeout", type=float, default=180)
    stack = sub.add_parser("stack", help="the local Kafka + PostgreSQL stack")
    stack.add_argument("action", choices=["up", "down", "status", "reset"])
    sub.add_parser("serve", help="run the fetcher, validator, mapper and writer until Ctrl-C")
    sync = sub.add_parser("sync", help="request a sync of one tenant")
    sync.add_argument("tenant")
    sync.add_argument("--source", default=None)
    sync.add_argument("--wait", action="store_true", help="wait for the run and print its report")
    sync.add_argument(
        "--resend-unchanged",
        action="store_true",
        help="send every record whole, also those already held unchanged (e.g. after a crosswalk)",
    )
    sync.add_argument("--timeout", type=float, default=600)
    sync.add_argument(
        "--full", action="store_true", help="REST: a full sync even if a delta is due"
    )
    sync.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="sync this bundle once via the tenant's csv source",
    )
    sync.add_argument("--json", action="store_true", help="print one JSON document")
    runs = sub.add_parser("runs", help="list recent sync runs, or cancel one")
    runs.add_argument("action", nargs="?", choices=["list", "cancel"], default="list")
    runs.add_argument("cancel_tenant", nargs="?", metavar="TENANT", help="cancel: the tenant")
    runs.add_argument("run_id", nargs="?", type=UUID, help="cancel: the run")
    runs.add_argument("--tenant", default=None, help="list: only this tenant")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument(
        "--by", default=None, help="cancel: a label for the audit (default: your OS login name)"
    )
    runs.add_argument("--reason", default=None, help="cancel: why (kept in the operator audit)")
    runs.add_argument("--timeout", type=float, default=30, help="cancel: seconds to wait for it")
    runs.add_argument("--json", action="store_true", help="list: print one JSON document")
    rep = sub.add_parser("replay", help="rebuild a fresh schema from the retained topics")
    rep.add_argument("schema", help="the new schema to write into (must not exist yet)")
    rep.add_argument("--compare", action="store_true", help="compare it with the live schema")
    holds = sub.add_parser("holds", help="runs held by the safety threshold; approve or discard")
    holds.add_argument("action", nargs="?", choices=["list", "approve", "discard"], default="list")
    holds.add_argument("tenant", nargs="?")
    holds.add_argument("run_id", nargs="?", type=UUID)
    holds.add_argument("--all", action="store_true", help="list every run outcome, not only holds")
    holds.add_argument("--json", action="store_true", help="list: print one JSON document")
    holds.add_argument(
        "--by",
        default=None,
        help="a label for the audit (default: your OS login name); who"
        " decided is the database login the CLI authenticates as",
    )
    holds.add_argument("--reason", default=None, help="why (kept in the operator audit)")
    gen = sub.add_parser("generate", help="write a synthetic district as a OneRoster bundle")
    gen.add_argument("out", type=Path, help="folder to write the bundle into")
    gen.add_argument("--students", type=int, default=1000)
    gen.add_argument("--version", choices=["1.1", "1.2"], default="1.1")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--delta-from", type=Path, default=None,
                     help="write a delta bundle against this generated bundle instead")  # fmt: skip
    gen.add_argument("--share", type=float, default=0.02, help="share of records a delta changes")
    behind = sub.add_parser("lag", help="how far behind each service is (messages not yet done)")
    behind.add_argument("--partitions", action="store_true", help="per topic and partition")
    behind.add_argument("--json", action="store_true", help="print one JSON document")
    report = sub.add_parser("report", help="rows landed and rejections of one run")
    report.add_argument("tenant")
    report.add_argument("run_id", type=UUID)
    report.add_argument("--limit", type=int, default=5, help="findings shown per code")
    report.add_argument("--csv", type=Path, default=None, help="write every finding to this CSV")
    report.add_argument("--json", action="store_true", help="print one JSON document")
    identity_commands.add_commands(sub)
    tenant_commands.add_commands(sub)
    api_commands.add_commands(sub)
    asof.add_commands(sub)
    return parser


def _stack(action: str) -> int:
    if action == "up":
        info = localstack.up()
        print(f"KAFKA_BOOTSTRAP_SERVERS={info.kafka_bootstrap}")
        print(f"DATABASE_URL={info.database_url}")
    elif action == "down":
        localstack.down()
    elif action == "reset":
        localstack.reset()
    else:
        for component, state in localstack.status().items():
            print(f"{component}: {state}")
    return 0


def _serve() -> int:
    """The four services until Ctrl-C or SIGTERM; a service that dies is started again."""
    settings = actions.resolve_settings(start_stack=True)
    supervisor = Supervisor(settings, (*SERVICES, "api"))
    actions.announce_api(settings)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
    with contextlib.suppress(KeyboardInterrupt):
        supervisor.run()
    return 0


async def _replay(settings: CliSettings, schema: str, with_compare: bool) -> int:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        if await conn.fetchval("SELECT to_regnamespace($1)", schema) is not None:
            print(
                f"rostersync: schema {schema} exists; a replay needs a fresh one", file=sys.stderr
            )
            return 2
        seconds = await replay(settings, schema)
        print(f"replayed the topics into schema {schema} in {seconds:.1f} s")
        if not with_compare:
            return 0
        differences = {
            t: d
            for t, d in (await compare(conn, settings.db_schema, schema)).items()
            if d != (0, 0)
        }
    finally:
        await conn.close()
    for table, (live_only, replay_only) in differences.items():
        print(f"  {table}: {live_only} rows only live, {replay_only} only replayed")
    print("identical to the live schema" if not differences else "DIFFERENT from the live schema")
    return 0 if not differences else 1


def _holds(settings: CliSettings, args: argparse.Namespace) -> int:
    if args.action == "list" and args.json:
        emit(asyncio.run(scripted.holds(settings, args.tenant, args.all)))
        return 0
    if args.action == "list":
        asyncio.run(print_holds(settings, args.tenant, args.all))
        return 0
    if args.tenant is None or args.run_id is None:
        print(f"rostersync holds {args.action} needs TENANT and RUN_ID", file=sys.stderr)
        return 2
    refused = asyncio.run(refusal(settings, settings.tenants_file, args.tenant, args.run_id))
    if refused is not None:
        print(f"rostersync: {refused}; nothing sent", file=sys.stderr)
        return EXIT_REFUSED
    approve = args.action == "approve"
    asyncio.run(decide(settings, args.tenant, args.run_id, approve, args.by, args.reason))
    print(f"run {args.run_id}: {args.action} sent; the writer applies it in order")
    return 0


def _cancel(settings: CliSettings, args: argparse.Namespace) -> int:
    tenant, run_id = args.cancel_tenant, args.run_id
    if tenant is None or run_id is None:
        print("rostersync runs cancel needs TENANT and RUN_ID", file=sys.stderr)
        return EXIT_REFUSED
    refused = asyncio.run(cancel_refusal(settings, settings.tenants_file, tenant, run_id))
    if refused is not None:
        print(f"rostersync: {refused}; nothing sent", file=sys.stderr)
        return EXIT_REFUSED
    asyncio.run(send_cancel(settings, tenant, run_id, args.by, args.reason))
    print(f"run {run_id}: cancel sent")
    state = asyncio.run(wait_for_end(settings, tenant, run_id, args.timeout))
    if state is None:
        print(f"run {run_id} still running after {args.timeout:.0f} s", file=sys.stderr)
        return EXIT_NOT_FINISHED
    print(f"run {run_id}: {state.status}" + (f" ({state.detail})" if state.detail else ""))
    return state.exit_code


def _wait(settings: CliSettings, command: SyncRequested, timeout: float) -> int:
    try:
        return asyncio.run(actions.wait_and_report(settings, command, timeout))
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; run {command.run_id} goes on"
            f" (rostersync report {command.tenant} {command.run_id})",
            file=sys.stderr,
        )
        return EXIT_NOT_FINISHED


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return actions.demo(args.timeout)
    if args.command == "stack":
        return _stack(args.action)
    if args.command == "serve":
        return _serve()
    if args.command == "generate":
        shape = DistrictShape(students=args.students, seed=args.seed, version=args.version)
        written = (
            generate_delta(args.delta_from, args.out, args.share, args.seed)
            if args.delta_from
            else generate(args.out, shape)
        )
        for name, rows in written.items():
            print(f"{name:<22}{rows:>12,}")
        return 0
    settings = actions.resolve_settings(start_stack=False)
    if args.command in identity_commands.COMMANDS:
        return identity_commands.run_command(settings, args)
    if args.command in tenant_commands.COMMANDS:
        return tenant_commands.run_command(settings, args)
    if args.command in api_commands.COMMANDS:
        return api_commands.run_command(settings, args)
    if args.command in asof.COMMANDS:
        return asof.run_command(settings, args)
    if args.command == "sync":
        return _sync(settings, args)
    if args.command == "replay":
        return asyncio.run(_replay(settings, args.schema, args.compare))
    if args.command == "holds":
        return _holds(settings, args)
    if args.command == "lag":
        found = asyncio.run(lag.lag(settings))
        if args.json:
            emit(lag.document(found))
        else:
            print(lag.table(found, args.partitions))
        return 0
    if args.command == "runs" and args.action == "cancel":
        return _cancel(settings, args)
    if args.command == "runs" and args.json:
        emit(asyncio.run(scripted.runs(settings, args.tenant, args.limit)))
        return 0
    if args.command == "runs":
        asyncio.run(actions.print_runs(settings, args.tenant, args.limit))
        return 0
    if args.json:
        return asyncio.run(scripted.report(settings, args.tenant, args.run_id, args.limit))
    return asyncio.run(
        actions.print_run_report(settings, args.tenant, args.run_id, args.limit, args.csv)
    )


def _sync(settings: CliSettings, args: argparse.Namespace) -> int:
    bundle = None
    if args.bundle is not None:
        if not args.bundle.exists():
            raise KeyError(f"no bundle at {args.bundle}")
        bundle = str(args.bundle.resolve())
    command = asyncio.run(
        actions.request_sync(
            settings, args.tenant, args.source, resend_unchanged=args.resend_unchanged,
            full=args.full, bundle=bundle,
        )
    )  # fmt: skip
    if args.json and not args.wait:
        emit({"tenant": command.tenant, "run_id": str(command.run_id), "status": "requested"})
        return 0
    if args.json:
        return asyncio.run(scripted.wait(settings, command, args.timeout))
    print(f"sync requested: tenant {command.tenant}, run {command.run_id}")
    if args.wait:
        return _wait(settings, command, args.timeout)
    return 0


def main() -> None:
    # aiokafka logs each failed connection; the CLI says it once, with what to do (unavailable.py).
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    try:
        sys.exit(run())
    except BrokenPipeError:
        # The reader went away (`rostersync runs | head`): end quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except TenantPurgedError as exc:  # no command is sealed for a purged tenant
        print(f"rostersync: {exc}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    except KeyError as exc:  # an unknown tenant or source: the message is the first argument
        print(f"rostersync: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    except asyncpg.UndefinedTableError:
        print(
            f"rostersync: no rostersync tables in schema {CliSettings().db_schema} yet"
            " (the writer creates them when it starts)",
            file=sys.stderr,
        )
        sys.exit(EXIT_REFUSED)
    except (localstack.StackError, OSError, KafkaError, asyncpg.ClientConfigurationError) as exc:
        down = unavailable_message(exc, CliSettings())
        if down is not None:
            print(f"rostersync: {down}", file=sys.stderr)
            sys.exit(EXIT_UNAVAILABLE)
        if isinstance(exc, KafkaError):
            raise
        print(f"rostersync: {exc}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)


if __name__ == "__main__":
    main()
