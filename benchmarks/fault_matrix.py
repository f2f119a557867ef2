"""Fault matrix: kill each service, restart the broker and PostgreSQL mid-run, compare the roster.

Not a timed test: a script that says whether a sync interrupted by a fault ends with the roster a
clean sync gives, row for row (benchmarks/roster_diff.py says what is compared).

1. One district of ``--students`` students is generated (``--seed``).
2. A clean run: the four services in a topic prefix and schema of their own, one full sync,
   waited for; its roster is the reference, its duration gives the fault windows.
3. Per service (fetcher, validator, mapper, writer) x ``--trials``: a fresh prefix and schema,
   the services under ``rostersync serve``'s Supervisor, a sync, ``kill -9`` of the service at a
   random moment (between 5% and 90% of the clean run's fetch for the fetcher, of its whole run
   for the others; a fault that comes after its run ended is drawn again, within that run's
   duration, and the trial run again), the Supervisor restarts it; the trial ends when no run of the tenant is running and one completed
   (a fetcher killed mid-run ends its run through its lease and a retry), or at ``--timeout``.
4. Broker and PostgreSQL restarts x ``--restart-trials``: stop the server at a random moment in
   the run (5% to 70% of the clean run's duration), leave it down ``--down-seconds``, start it; services are *not* restarted, and every
   service that exits is counted.
5. Every trial's roster is compared with the clean one; schemas and topics are dropped.

The servers are a private local stack (own state folder and ports, stopped at the end) so that
restarting them disturbs nobody else's tests; ``--stack local`` uses ``rostersync stack up``'s,
and KAFKA_BOOTSTRAP_SERVERS + DATABASE_URL, when both are set, are used as they are (then the
restart faults are skipped: those servers are not ours to restart). Run leases are shortened for
the matrix (ROSTERSYNC_LEASE_* below) so a killed fetcher's run lapses in seconds, not a minute.

    .venv/bin/python -m benchmarks.fault_matrix --students 20000 --trials 5
    .venv/bin/python -m benchmarks.fault_matrix --students 2000 --trials 1 --faults writer,kafka

Prints a table, writes JSON to .benchmarks/fault-matrix-STUDENTS.json (after every trial) and each
trial's service logs to --log-dir; exits 1 if any trial's roster differs or its run did not end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import rostersync_localstack
from pydantic import SecretStr
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.operations import send_command
from rostersync_cli.processes import SERVICES, Supervisor, stop_all
from rostersync_cli.settings import CliSettings
from rostersync_cli.text_tables import format_table
from rostersync_libs.commands import SyncRequested
from rostersync_libs.kafka import ensure_topics
from rostersync_localstack import kafka, postgres
from rostersync_localstack.stack import DATABASE, DEFAULT_KAFKA_PORT, DEFAULT_PG_PORT

from benchmarks import roster_diff
from benchmarks.csv_memory import cleanup

TENANT = "faults"
SERVERS = ("kafka", "postgres")
FAULTS = (*SERVICES, *SERVERS)
# A killed fetcher's run lease lapses after 12 s (default 60 s), looked for every 3 s (15 s).
LEASE_ENV = {
    "ROSTERSYNC_LEASE_RENEW_SECONDS": "3",
    "ROSTERSYNC_LEASE_STALE_SECONDS": "12",
    "ROSTERSYNC_LEASE_CHECK_SECONDS": "3",
}
PRIVATE_KAFKA_PORT, PRIVATE_PG_PORT = 19392, 15632
# Every run terminal, none completed, nothing new for this long: no retry is coming.
SETTLE_SECONDS = 45.0
POLL_SECONDS = 0.5
# A fault that comes after its run ended tests nothing: drawn again (within that run's duration).
AFTER_THE_END = "after the end"
REDRAWS = 3

# The script's own lines; fds 1 and 2 are the current trial's log while its services run.
CONSOLE = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)


def say(line: str) -> None:
    print(line, file=CONSOLE, flush=True)


@contextlib.contextmanager
def children_output(path: Path) -> Iterator[None]:
    """Services started (and restarted) meanwhile write to ``path``: they inherit fds 1 and 2."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


# --------------------------------------------------------------------------------- servers


@dataclass
class Servers:
    kafka_bootstrap: str
    database_url: str
    kafka_config: kafka.KafkaConfig | None = None  # None: not ours to restart
    postgres_config: postgres.PostgresConfig | None = None
    state_dir: Path | None = None  # a private stack's, stopped at the end

    @property
    def restartable(self) -> bool:
        return self.kafka_config is not None and self.postgres_config is not None

    def restart(self, server: str, down_seconds: float) -> float:
        """Stop one server, leave it down ``down_seconds``, start it (blocking); seconds until it
        answers again."""
        started = time.monotonic()
        if server == "kafka":
            assert self.kafka_config is not None
            kafka.stop(self.kafka_config)
            time.sleep(down_seconds)
            kafka.wait_ready(self.kafka_config, kafka.start(self.kafka_config))
        else:
            assert self.postgres_config is not None
            postgres.stop(self.postgres_config)
            time.sleep(down_seconds)
            postgres.ensure_running(self.postgres_config)
        return time.monotonic() - started

    def down(self) -> None:
        if self.state_dir is not None:
            rostersync_localstack.down(self.state_dir)


def provide_servers(stack: str) -> Servers:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"):
        return Servers(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"])
    if stack == "private":
        state_dir = kafka.cache_base() / "fault-matrix-stack"
        os.environ["ROSTERSYNC_STACK_KAFKA_PORT"] = str(PRIVATE_KAFKA_PORT)
        os.environ["ROSTERSYNC_STACK_PG_PORT"] = str(PRIVATE_PG_PORT)
    else:
        state_dir = rostersync_localstack.default_state_dir()
    kafka_port = int(os.environ.get("ROSTERSYNC_STACK_KAFKA_PORT") or DEFAULT_KAFKA_PORT)
    pg_port = int(os.environ.get("ROSTERSYNC_STACK_PG_PORT") or DEFAULT_PG_PORT)
    info = rostersync_localstack.up(state_dir)
    return Servers(
        info.kafka_bootstrap,
        info.database_url,
        kafka.KafkaConfig(state_dir / "kafka", kafka_port, kafka_port + 1),
        postgres.PostgresConfig(state_dir / "postgres", pg_port, DATABASE),
        state_dir if stack == "private" else None,
    )


# ---------------------------------------------------------------------------------- trials


@dataclass
class Trial:
    fault: str
    index: int
    log: str
    fault_at_s: float | None = None  # after the sync request
    fault_phase: str = ""  # where the run was when the fault hit
    outage_s: float | None = None  # a server's stop and start
    fetched_s: float | None = None
    end_s: float | None = None
    ended: str = ""  # completed | no run completed | timeout | error
    runs: list[str] = field(default_factory=list)  # statuses, oldest first
    fetch_errors: list[str] = field(default_factory=list)
    deaths: list[dict[str, Any]] = field(default_factory=list)  # exits the script did not cause
    restarts: int = 0
    equal: bool | None = None
    diff: dict[str, Any] = field(default_factory=dict)  # differing tables only
    examples: list[dict[str, Any]] = field(default_factory=list)
    side: dict[str, int | None] = field(default_factory=dict)  # rejected, findings, parked
    redrawn: int = 0  # faults drawn again because the run had ended before them
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.ended == "completed" and bool(self.equal)

    @property
    def statuses(self) -> str:
        return "→".join(self.runs) or "(no run)"


class RunWatch:
    """The tenant's runs in one schema, read on a connection that is made again when lost."""

    def __init__(self, url: str, schema: str) -> None:
        self._url, self._schema = url, schema
        self._conn: asyncpg.Connection | None = None
        self._migrated = False

    async def migrated(self) -> bool:
        """Whether the writer has created its tables (False also while unreachable)."""
        return await self.runs() is not None and self._migrated

    async def runs(self) -> list[tuple[str, str, str | None, str | None]] | None:
        """(run id, status, fetch status, fetch error) oldest first; None if unreachable."""
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._url, timeout=3)
            table = f"{self._schema}.sync_runs"
            self._migrated = bool(await self._conn.fetchval("SELECT to_regclass($1)", table))
            if not self._migrated:
                return []
            rows = await self._conn.fetch(
                f'SELECT run_id, status, fetch_status, fetch_error FROM "{self._schema}".sync_runs'
                " WHERE tenant_id = $1 ORDER BY first_event_at, run_id",
                TENANT,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self.close()
            return None
        return [(str(r[0]), r[1], r[2], r[3]) for r in rows]

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


def phase(runs: list[tuple[str, str, str | None, str | None]] | None) -> str:
    """Where the run was, as PostgreSQL says (the writer records the fetcher's run events)."""
    if not runs:
        return "before"
    _, status, fetch_status, _ = runs[-1]
    if status != "running":
        return AFTER_THE_END
    return {"started": "fetching", "fetched": "stages"}.get(fetch_status or "", "running")


class Matrix:
    def __init__(
        self, servers: Servers, base: CliSettings, log_dir: Path, down_seconds: float
    ) -> None:
        self.servers = servers
        self.base = base
        self.log_dir = log_dir
        self.down_seconds = down_seconds
        self.timeout = 3600.0

    def settings(self) -> CliSettings:
        tag = uuid.uuid4().hex[:8]
        return self.base.model_copy(
            update={"topic_prefix": f"faults-{tag}.", "db_schema": f"faults_{tag}"}
        )

    async def run(
        self, fault: str, index: int, fault_at: float | None
    ) -> tuple[Trial, CliSettings]:
        """One sync with ``fault`` at ``fault_at`` seconds (None: clean), followed to its end."""
        settings = self.settings()
        log = self.log_dir / f"{fault}-{index}.log"
        trial = Trial(fault, index, str(log))
        await ensure_topics(settings)
        with children_output(log):
            print(f"--- fault matrix: {fault} #{index}, schema {settings.db_schema}", flush=True)
            supervisor = Supervisor(settings)
            watch = RunWatch(self.servers.database_url, settings.db_schema)
            try:
                await self._ready(watch)
                await self._follow(settings, supervisor, watch, trial, fault_at)
            except Exception as exc:
                trial.ended, trial.error = "error", f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                await watch.close()
                await asyncio.to_thread(stop_all, list(supervisor.children.values()))
                trial.restarts = sum(supervisor.restarts.values())
        return trial, settings

    async def _ready(self, watch: RunWatch) -> None:
        """Until the writer has migrated the schema; then a moment for consumers to join."""
        deadline = time.monotonic() + 120
        while not await watch.migrated():
            if time.monotonic() > deadline:
                raise TimeoutError("the writer did not create its schema in 120 s")
            await asyncio.sleep(POLL_SECONDS)
        await asyncio.sleep(2)

    async def _follow(
        self,
        settings: CliSettings,
        supervisor: Supervisor,
        watch: RunWatch,
        trial: Trial,
        fault_at: float | None,
    ) -> None:
        await send_command(settings, SyncRequested(tenant=TENANT, source=None, full=True))
        started = time.monotonic()
        server_restart: asyncio.Task[float] | None = None
        killed: int | None = None
        dead: set[int] = set()
        runs: list[tuple[str, str, str | None, str | None]] | None = None
        last_seen: Any = None
        last_change = started
        try:
            while True:
                now = time.monotonic()
                elapsed = now - started
                if fault_at is not None and trial.fault_at_s is None and elapsed >= fault_at:
                    runs = await watch.runs() or runs  # the run's phase at this very moment
                    trial.fault_at_s, trial.fault_phase = round(elapsed, 1), phase(runs)
                    print(f"--- fault: {trial.fault} at {elapsed:.1f} s", flush=True)
                    if trial.fault in SERVICES:
                        proc = supervisor.children[trial.fault]
                        killed = proc.pid
                        proc.kill()
                    else:
                        server_restart = asyncio.create_task(
                            asyncio.to_thread(self.servers.restart, trial.fault, self.down_seconds)
                        )
                for name, proc in supervisor.children.items():
                    if proc.pid not in dead and proc.poll() is not None:
                        dead.add(proc.pid)
                        if proc.pid != killed:
                            trial.deaths.append(
                                {
                                    "service": name,
                                    "code": proc.returncode,
                                    "at_s": round(elapsed, 1),
                                }
                            )
                if trial.fault in SERVICES:
                    supervisor.check()  # what `rostersync serve` does
                if server_restart is not None and server_restart.done() and trial.outage_s is None:
                    trial.outage_s = round(server_restart.result(), 1)
                seen = await watch.runs()
                if seen is not None:
                    runs = seen
                    if seen != last_seen:
                        last_seen, last_change = seen, now
                    if trial.fetched_s is None and any(r[2] == "fetched" for r in seen):
                        trial.fetched_s = round(elapsed, 1)
                    statuses = [r[1] for r in seen]
                    pending = (fault_at is not None and trial.fault_at_s is None) or (
                        server_restart is not None and not server_restart.done()
                    )
                    if seen and "running" not in statuses and not pending:
                        if "completed" in statuses:
                            trial.ended = "completed"
                            break
                        if now - last_change > SETTLE_SECONDS:
                            trial.ended = "no run completed"
                            break
                if elapsed > self.timeout:
                    trial.ended = "timeout"
                    break
                await asyncio.sleep(POLL_SECONDS)
        finally:
            if server_restart is not None:  # never leave a server down
                trial.outage_s = round(await server_restart, 1)
        trial.end_s = round(time.monotonic() - started, 1)
        trial.runs = [r[1] for r in runs or []]
        trial.fetch_errors = [r[3] for r in runs or [] if r[3]]
        print(f"--- ended: {trial.ended} after {trial.end_s} s, runs {trial.statuses}", flush=True)


async def side_counts(conn: asyncpg.Connection, schema: str) -> dict[str, int | None]:
    """Rows beside the roster: rejected records, findings, parked records (not compared)."""
    counts: dict[str, int | None] = {}
    for table in ("rejected_records", "findings", "parked_records"):
        try:
            counts[table] = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE tenant_id = $1', TENANT
            )
        except asyncpg.PostgresError:
            counts[table] = None
    return counts


async def judge(
    servers: Servers,
    clean: roster_diff.Snapshot,
    clean_schema: str,
    trial: Trial,
    settings: CliSettings,
) -> None:
    conn = await asyncpg.connect(servers.database_url)
    try:
        if await conn.fetchval("SELECT to_regclass($1)", f"{settings.db_schema}.sync_runs"):
            got = await roster_diff.snapshot(conn, settings.db_schema, TENANT)
            trial.side = await side_counts(conn, settings.db_schema)
        else:
            got = {}
        diffs = roster_diff.compare(clean, got)
        trial.equal = all(d.equal for d in diffs)
        trial.diff = {d.table: d.summary() for d in diffs if not d.equal}
        for d in diffs:
            if not d.equal and got:
                for example in await roster_diff.examples(
                    conn, clean_schema, settings.db_schema, TENANT, d
                ):
                    trial.examples.append({"table": d.table, **example})
    finally:
        await conn.close()


# -------------------------------------------------------------------------------- the matrix


def declare(tenants: Path, bundle: Path) -> None:
    tenants.write_text(
        f'[[tenants]]\nid = "{TENANT}"\nname = "Fault matrix"\nhold_threshold = 1.0\n'
        f'[[tenants.sources]]\nid = "csv"\npath = "{bundle}"\n'
    )


def describe(trial: Trial) -> str:
    diff = ", ".join(
        f"{t} -{d['missing']} +{d['extra']} ~{d['changed']}" for t, d in trial.diff.items()
    )
    deaths = ", ".join(f"{d['service']} ({d['code']}) at {d['at_s']} s" for d in trial.deaths)
    return (
        f"{trial.fault} #{trial.index}: fault at {trial.fault_at_s} s ({trial.fault_phase})"
        + (f", server back after {trial.outage_s} s" if trial.outage_s is not None else "")
        + (f" (drawn {trial.redrawn + 1} times)" if trial.redrawn else "")
        + f"; {trial.ended} after {trial.end_s} s, runs {trial.statuses}"
        + f"; roster {'equal' if trial.equal else 'DIFFERS: ' + (diff or 'no roster')}"
        + (f"; services died: {deaths}" if deaths else "")
        + (f"; error {trial.error}" if trial.error else "")
    )


def table(trials: list[Trial]) -> str:
    rows = []
    for fault in FAULTS:
        mine = [t for t in trials if t.fault == fault]
        if not mine:
            continue
        statuses = Counter(t.statuses for t in mine)
        ends = [t.end_s for t in mine if t.end_s is not None and t.ended == "completed"]
        deaths = Counter(d["service"] for t in mine for d in t.deaths)
        hit = Counter(t.fault_phase for t in mine)
        rows.append(
            [
                fault,
                str(len(mine)),
                ", ".join(f"{p} x{n}" for p, n in hit.items()),
                f"{sum(bool(t.equal) for t in mine)}/{len(mine)}",
                ", ".join(f"{s} x{n}" for s, n in statuses.items()),
                f"{statistics.median(ends):.1f} s" if ends else "-",
                ", ".join(f"{s} x{n}" for s, n in deaths.items()) or "none",
            ]
        )
    return format_table(
        ["fault", "trials", "hit while", "equal", "statuses", "median time to end", "died"],
        rows,
    )


def git(*args: str) -> str:
    """The checkout the services ran from (others may have changes in it)."""
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def save(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))


async def main(args: argparse.Namespace) -> int:
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown faults {sorted(unknown)}; choose from {','.join(FAULTS)}")
    os.environ.update(LEASE_ENV)  # the services' environment is a copy of ours
    servers = provide_servers(args.stack)
    if not servers.restartable and any(f in SERVERS for f in faults):
        say("servers given by KAFKA_BOOTSTRAP_SERVERS/DATABASE_URL: restart faults skipped")
        faults = [f for f in faults if f not in SERVERS]
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="fault-matrix-"))
    os.makedirs(log_dir, exist_ok=True)
    out = Path(".benchmarks") / f"fault-matrix-{args.students}.json"
    rng = random.Random(args.seed)  # noqa: S311  (fault moments, not secrets)
    result: dict[str, Any] = {
        "students": args.students,
        "seed": args.seed,
        "lease_env": LEASE_ENV,
        "servers": servers.kafka_bootstrap + " " + servers.database_url,
        "log_dir": str(log_dir),
        "down_seconds": args.down_seconds,
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--short", "--untracked-files=no").splitlines(),
    }
    trials: list[Trial] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bundle, tenants = Path(tmp) / "bundle", Path(tmp) / "tenants.toml"
            counts = generate(bundle, DistrictShape(students=args.students, seed=args.seed))
            result["records"] = sum(counts.values())
            declare(tenants, bundle)
            base = CliSettings(
                kafka_bootstrap_servers=servers.kafka_bootstrap,
                database_url=SecretStr(servers.database_url),
                topic_partitions=3,
                tenants_file=tenants,
                log_level=args.log_level,
            )
            say(f"{args.students:,} students, {result['records']:,} records; logs in {log_dir}")
            matrix = Matrix(servers, base, log_dir, args.down_seconds)
            clean, clean_settings = await matrix.run("clean", 0, None)
            say(f"clean: {clean.ended} in {clean.end_s} s (fetched after {clean.fetched_s} s)")
            result["clean"] = asdict(clean)
            if clean.ended != "completed" or clean.end_s is None:
                say("the clean run did not complete: no reference, no matrix")
                await cleanup(clean_settings)
                return 2
            conn = await asyncpg.connect(servers.database_url)
            try:
                reference = await roster_diff.snapshot(conn, clean_settings.db_schema, TENANT)
                result["clean_rows"] = {
                    t: roster_diff.rows_of(t, rows) for t, rows in reference.items()
                }
                result["clean"]["side"] = await side_counts(conn, clean_settings.db_schema)
            finally:
                await conn.close()
            run_s, fetch_s = clean.end_s, clean.fetched_s or clean.end_s
            matrix.timeout = args.timeout or max(180.0, 5 * run_s) + 30
            result["timeout_s"] = matrix.timeout
            for fault in faults:
                # A restart takes seconds of its own: started early enough to land mid-run.
                window = fetch_s if fault == "fetcher" else run_s
                latest = 0.9 if fault in SERVICES else 0.7
                count = args.trials if fault in SERVICES else args.restart_trials
                for index in range(1, count + 1):
                    at = round(rng.uniform(0.05, latest) * window, 1)
                    for attempt in range(1, REDRAWS + 2):
                        trial, settings = await matrix.run(fault, index, at)
                        trial.redrawn = attempt - 1
                        if trial.fault_phase != AFTER_THE_END or attempt > REDRAWS:
                            break
                        # Faster than the clean run (the machine is shared): the fault missed it.
                        took = (trial.fetched_s if fault == "fetcher" else None) or trial.end_s
                        say(f"missed {fault} #{index}: the run had ended before the fault at"
                            f" {at} s; again, within this run's {took} s")  # fmt: skip
                        if not args.keep:
                            await cleanup(settings)
                        at = round(rng.uniform(0.05, latest) * (took or window), 1)
                    if trial.error is None:
                        await judge(servers, reference, clean_settings.db_schema, trial, settings)
                    if not args.keep:
                        await cleanup(settings)
                    trials.append(trial)
                    say(("ok    " if trial.ok else "FAIL  ") + describe(trial))
                    result["trials"] = [asdict(t) | {"ok": t.ok} for t in trials]
                    save(out, result)
            if not args.keep:
                await cleanup(clean_settings)
    finally:
        if not args.keep_stack:
            servers.down()
    say("\n" + table(trials))
    say(f"\nJSON: {out}; service logs: {log_dir}")
    return 0 if all(t.ok for t in trials) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=5, help="kills per service")
    parser.add_argument("--restart-trials", type=int, default=2, help="restarts per server")
    parser.add_argument("--seed", type=int, default=1, help="district and fault moments")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset")
    parser.add_argument(
        "--stack",
        choices=("private", "local"),
        default="private",
        help="private: own servers (ports 19392, 15632); local: `rostersync stack up`'s",
    )
    parser.add_argument(
        "--down-seconds", type=float, default=5.0, help="a restarted server stays down this long"
    )
    parser.add_argument("--timeout", type=float, default=0, help="per trial (0: from clean run)")
    parser.add_argument("--log-level", default="INFO", help="the services' log level")
    parser.add_argument("--log-dir", default="", help="service logs (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep schemas and topics")
    parser.add_argument("--keep-stack", action="store_true", help="leave a private stack up")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
