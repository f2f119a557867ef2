"""Change-to-row latency of a polled OneRoster REST source, on the local stack.

The bundled OneRoster server (in this process) serves a generated district over 1.1 + OAuth2;
the four services run as child processes with the tenant's API source polling every 5 s
(``schedule.every_seconds = 5``). After the first full sync lands, N users are renamed on the
server one at a time (``data.upsert`` with a marker in ``givenName``, a random 0.3 to 1 s apart,
each a different user), and for each the time from the server change to the marker being in
PostgreSQL's ``users`` table is measured (the table is polled every 50 ms). Prints p50/p90/p99/max
and writes JSON to ``.benchmarks/rest-latency.json``.

    .venv/bin/python -m benchmarks.rest_latency            # 100 changes, 500 students
    .venv/bin/python -m benchmarks.rest_latency 30 200     # 30 changes, 200 students
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.processes import running_services
from rostersync_libs.kafka import ensure_topics
from rostersync_oneroster_server import OneRosterServer

from benchmarks.csv_memory import cleanup, settings_for

POLL_SECONDS = 5
OVERLAP_SECONDS = 10
SECRET_ENV = "ROSTERSYNC_BENCH_OAUTH2_SECRET"  # noqa: S105 (a variable name)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def tenants_text(server: OneRosterServer) -> str:
    return (
        '[[tenants]]\nid = "bench"\nname = "Bench"\n'
        '[[tenants.sources]]\nid = "api"\nkind = "oneroster-api"\n'
        f'base_url = "{server.base_url}"\nversion = "1.1"\npage_size = 1000\n'
        f"delta_overlap_seconds = {OVERLAP_SECONDS}\n"
        f'auth = {{ kind = "oauth2", token_url = "{server.token_url}", client_id = "bench",'
        f' secret_env = "{SECRET_ENV}" }}\n'
        f"schedule = {{ every_seconds = {POLL_SECONDS} }}\n"
    )


async def wait_loaded(conn: asyncpg.Connection, schema: str, users: int, timeout: float) -> float:
    """Seconds until the first (full) sync has put every user in PostgreSQL."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout):
        while True:
            try:
                found = await conn.fetchval(
                    f'SELECT count(*) FROM "{schema}".users WHERE archived_at IS NULL'
                )
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                found = 0
            if found >= users:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)


async def measure(
    server: OneRosterServer, conn: asyncpg.Connection, schema: str, changes: int, tag: str
) -> list[float]:
    """Rename ``changes`` users on the server; the latency of each rename to PostgreSQL."""
    rng = random.Random(7)  # noqa: S311 (timing spread, not cryptography)
    users = sorted(server.data.records("users").values(), key=lambda r: r.sourced_id)
    chosen = rng.sample(users, changes)
    changed_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    done = asyncio.Event()

    async def poll() -> None:
        while len(seen_at) < changes:
            rows = await conn.fetch(
                f'SELECT given_name FROM "{schema}".users WHERE given_name LIKE $1', f"L{tag}-%"
            )
            now = time.perf_counter()
            for row in rows:
                seen_at.setdefault(row["given_name"], now)
            await asyncio.sleep(0.05)
        done.set()

    poller = asyncio.create_task(poll())
    for i, record in enumerate(chosen):
        marker = f"L{tag}-{i:03d}"
        changed_at[marker] = time.perf_counter()
        server.data.upsert("users", {**record.row, "givenName": marker})
        await asyncio.sleep(rng.uniform(0.3, 1.0))
    try:
        async with asyncio.timeout(120):
            await done.wait()
    finally:
        poller.cancel()
    return [seen_at[m] - changed_at[m] for m in changed_at]


async def main(changes: int, students: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = settings_for(f"rest_{tag}")
    os.environ[SECRET_ENV] = "bench-secret"
    result: dict[str, Any] = {"changes": changes, "students": students}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        counts = generate(bundle, DistrictShape(students=students))
        users = counts["users.csv"]
        async with OneRosterServer(bundle, oauth2={"bench": "bench-secret"}) as server:
            tenants = Path(tmp) / "tenants.toml"
            tenants.write_text(tenants_text(server))
            settings = settings.model_copy(update={"tenants_file": tenants, "log_level": "WARNING"})
            await ensure_topics(settings)
            conn = await asyncpg.connect(settings.database_url.get_secret_value())
            try:
                with running_services(settings):
                    result["first_full_sync_s"] = round(
                        await wait_loaded(conn, settings.db_schema, users, 180), 1
                    )
                    # The bulk rows all carry the server's load time: let it fall out of the
                    # deltas' overlap window, so each delta reads only what changed since.
                    await asyncio.sleep(OVERLAP_SECONDS + 1)
                    latencies = await measure(server, conn, settings.db_schema, changes, tag)
                    result["requests_served"] = sum(server.requests_served.values())
            finally:
                await conn.close()
                await cleanup(settings)
    result |= {
        "users": users,
        "poll_every_s": POLL_SECONDS,
        "delta_overlap_s": OVERLAP_SECONDS,
        "latency_s": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p90": round(percentile(latencies, 0.90), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
            "min": round(min(latencies), 2),
            "mean": round(sum(latencies) / len(latencies), 2),
        },
        "samples_s": [round(x, 3) for x in latencies],
    }
    return result


if __name__ == "__main__":
    n_changes = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_students = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    found = asyncio.run(main(n_changes, n_students))
    lat = found["latency_s"]
    print(
        f"{found['changes']} changes, {found['users']} users, poll every {POLL_SECONDS} s: "
        f"p50 {lat['p50']} s, p90 {lat['p90']} s, p99 {lat['p99']} s, max {lat['max']} s "
        f"(min {lat['min']} s, mean {lat['mean']} s); first full sync {found['first_full_sync_s']} s"
    )
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rest-latency.json").write_text(json.dumps(found, indent=2) + "\n")
