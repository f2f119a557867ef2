"""End-to-end benchmark: a generated district through all four services on the local stack.

Phases: full sync, unchanged re-sync, a 2% delta, replay into a fresh schema, and the
single-process baseline (benchmarks/baseline.py) on the same data and schema, to report the
pipeline's throughput as a share of the baseline. Prints a table, writes JSON to .benchmarks/.

    .venv/bin/python -m benchmarks.pipeline quick          # 10k students
    .venv/bin/python -m benchmarks.pipeline full           # 1M students
    .venv/bin/python -m benchmarks.pipeline 50000          # any size
    .venv/bin/python -m benchmarks.pipeline full --skip baseline,replay
    .venv/bin/python -m benchmarks.pipeline quick --instances 2   # scale-out: 2 of each stage

The JSON is rewritten after every phase, so a long run that is cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from rostersync_cli.actions import request_sync
from rostersync_cli.generate import DistrictShape, generate
from rostersync_cli.generate_delta import generate_delta
from rostersync_cli.lag import group_lag
from rostersync_cli.processes import SERVICES, start_service
from rostersync_cli.replay import replay
from rostersync_cli.settings import CliSettings
from rostersync_libs.ids import new_run_id
from rostersync_libs.kafka import client_options, ensure_topics

from benchmarks.baseline import run_baseline
from benchmarks.csv_memory import cleanup, settings_for

SIZES = {"quick": 10_000, "full": 1_000_000}


class Lag:
    """Samples each stage's consumer lag once a second."""

    def __init__(self, settings: CliSettings) -> None:
        self.settings = settings
        self.samples: list[dict[str, Any]] = []

    async def run(self, stop: asyncio.Event) -> None:
        t = self.settings.topics
        stages = {"validator": t.fetched, "mapper": t.validated}
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        consumer = AIOKafkaConsumer(**client_options(self.settings))
        await admin.start()
        await consumer.start()
        started = time.perf_counter()
        try:
            while not stop.is_set():
                # e.g. no group coordinator yet on a fresh broker: the next second's sample
                with contextlib.suppress(KafkaError):
                    self.samples.append(await self._sample(admin, consumer, stages, started))
                await asyncio.sleep(1)
        finally:
            await admin.close()
            await consumer.stop()

    async def _sample(
        self,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        stages: dict[str, str],
        started: float,
    ) -> dict[str, Any]:
        sample: dict[str, Any] = {"t": round(time.perf_counter() - started, 1)}
        for stage, topic in stages.items():
            group = self.settings.consumer_group(stage)
            sample[stage] = sum((await group_lag(admin, consumer, group, [topic])).values())
        return sample


async def topic_size(settings: CliSettings, topic: str) -> int:
    """Messages on a topic (all partitions)."""
    consumer = AIOKafkaConsumer(**client_options(settings))  # offsets only: nothing to open
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def timed_sync(settings: CliSettings, conn: asyncpg.Connection) -> dict[str, float]:
    """Request a sync; seconds until fetched (fetcher done) and completed (writer done)."""
    started = time.perf_counter()
    command = await request_sync(settings, "bench", None)
    fetched = None
    while True:
        row = await conn.fetchrow(
            f"SELECT status, fetch_status FROM {settings.db_schema}.sync_runs WHERE run_id = $1", command.run_id
        ) if await conn.fetchval("SELECT to_regclass($1)", f"{settings.db_schema}.sync_runs") else None  # fmt: skip
        if row is not None and fetched is None and row["fetch_status"] == "fetched":
            fetched = time.perf_counter() - started
        if row is not None and row["status"] == "completed":
            return {"fetched_s": fetched or 0.0, "completed_s": time.perf_counter() - started}
        await asyncio.sleep(0.2)


def declare(tenants: Path, bundle: Path) -> None:
    tenants.write_text(
        '[[tenants]]\nid = "bench"\nname = "Bench"\nhold_threshold = 1.0\n'
        f'[[tenants.sources]]\nid = "csv"\npath = "{bundle}"\n'
    )


def stop_with_usage(
    procs: dict[str, subprocess.Popen[bytes]],
) -> tuple[dict[str, int], dict[str, float]]:
    """Stop the services; each one's peak RSS (MB) and CPU seconds (user + system)."""
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    rss, cpu = {}, {}
    for name, proc in procs.items():
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        rss[name] = usage.ru_maxrss // 1024
        cpu[name] = round(usage.ru_utime + usage.ru_stime, 1)
    return rss, cpu


def cpu_seconds(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    """Each running service's CPU seconds so far (user + system, /proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for name, proc in procs.items():
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        found[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return found


def save(result: dict[str, Any]) -> Path:
    scaled = f"-x{result['instances']}" if result["instances"] > 1 else ""
    out = Path(".benchmarks") / f"pipeline-{result['students']}{scaled}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return out


def start_services(settings: CliSettings, instances: int) -> dict[str, subprocess.Popen[bytes]]:
    """One fetcher (one tenant's sync is one process's work) and ``instances`` of each stage,
    in one consumer group per stage: Kafka spreads the partitions over them."""
    procs = {"fetcher": start_service("fetcher", settings)}
    for name in SERVICES[1:]:
        for n in range(1, instances + 1):
            procs[name if instances == 1 else f"{name}-{n}"] = start_service(name, settings)
    return procs


async def main(
    students: int, skip: frozenset[str] = frozenset(), instances: int = 1
) -> dict[str, Any]:
    settings = settings_for(uuid.uuid4().hex[:8]).model_copy(update={"log_level": "WARNING"})
    result: dict[str, Any] = {
        "students": students,
        "partitions": settings.topic_partitions,
        "instances": instances,
    }
    with tempfile.TemporaryDirectory() as tmp:
        bundle, delta, tenants = (
            Path(tmp) / "bundle",
            Path(tmp) / "delta",
            Path(tmp) / "tenants.toml",
        )
        t0 = time.perf_counter()
        counts = generate(bundle, DistrictShape(students=students))
        result["records"] = records = sum(counts.values())
        result["generate_s"] = round(time.perf_counter() - t0, 1)
        delta_records = sum(generate_delta(bundle, delta, 0.02).values())
        declare(tenants, bundle)
        settings = settings.model_copy(update={"tenants_file": tenants})
        await ensure_topics(settings)
        procs = start_services(settings, instances)
        lag, stop = Lag(settings), asyncio.Event()
        sampler = asyncio.create_task(lag.run(stop))
        conn = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            await asyncio.sleep(3)
            before = cpu_seconds(procs)
            full = await timed_sync(settings, conn)
            after = cpu_seconds(procs)
            # The full sync's CPU per record and service (what the budget counts).
            result["full_cpu_us_per_record"] = {
                name: round((after[name] - before[name]) / records * 1e6, 1) for name in procs
            }
            resync = await timed_sync(settings, conn)
            declare(tenants, delta)
            delta_run = await timed_sync(settings, conn)
        finally:
            stop.set()
            try:
                await sampler
            finally:  # the services stop even if the sampler failed
                result["peak_rss_mb"], result["cpu_s"] = stop_with_usage(procs)
        result["full"] = full | {"records_per_s": round(records / full["completed_s"])}
        result["resync"] = resync | {"records_per_s": round(records / resync["completed_s"])}
        result["delta_2pct"] = delta_run | {"records": delta_records}
        result["max_lag"] = {
            s: max((x[s] for x in lag.samples), default=0) for s in ("validator", "mapper")
        }
        result["lag_samples"] = lag.samples
        save(result)
        replayed = f"{settings.db_schema}_replay"
        if "replay" not in skip:
            seconds = await replay(settings, replayed, timeout=4 * 3600)
            # The re-sync's unchanged records are on the mapped topic as lists (few events).
            represented = records * 2 + delta_records
            events = await topic_size(settings, settings.topics.mapped)
            result["replay"] = {
                "seconds": round(seconds, 1),
                "events": events,
                "records_per_s": round(represented / seconds),
            }
            save(result)
        baseline_settings = settings.model_copy(update={"db_schema": f"{settings.db_schema}_base"})
        if "baseline" not in skip:
            done, seconds = await run_baseline(baseline_settings, bundle, new_run_id())
            result["baseline"] = {
                "records": done,
                "seconds": round(seconds, 1),
                "records_per_s": round(done / seconds),
            }
            result["pipeline_vs_baseline"] = round(
                result["full"]["records_per_s"] / result["baseline"]["records_per_s"], 2
            )
        for schema in (replayed, baseline_settings.db_schema):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
        await cleanup(settings)
    return result


def print_table(r: dict[str, Any]) -> None:
    skipped: dict[str, Any] = {"replay": {"seconds": 0, "records_per_s": 0, "events": 0},
               "baseline": {"seconds": 0, "records_per_s": 0}, "pipeline_vs_baseline": 0}  # fmt: skip
    r = skipped | r
    rows = [
        ("students / records", f"{r['students']:,} / {r['records']:,} ({r['instances']} instance(s) per stage, {r['partitions']} partitions)"),
        ("full sync", f"{r['full']['completed_s']:.1f} s, {r['full']['records_per_s']:,} records/s (fetched after {r['full']['fetched_s']:.1f} s)"),
        ("unchanged re-sync", f"{r['resync']['completed_s']:.1f} s, {r['resync']['records_per_s']:,} records/s"),
        ("2% delta", f"{r['delta_2pct']['completed_s']:.1f} s for {r['delta_2pct']['records']:,} records"),
        ("replay", f"{r['replay']['seconds']:.1f} s, {r['replay']['records_per_s']:,} records/s of 3 syncs ({r['replay']['events']:,} messages on mapped)"),
        ("baseline (1 process)", f"{r['baseline']['seconds']:.1f} s, {r['baseline']['records_per_s']:,} records/s"),
        ("pipeline / baseline", f"{r['pipeline_vs_baseline']:.2f}"),
        ("full sync CPU µs/record", ", ".join(f"{k} {v}" for k, v in r.get("full_cpu_us_per_record", {}).items()) + f" (total {sum(r.get('full_cpu_us_per_record', {}).values()):.0f})"),
        ("CPU s (3 syncs)", ", ".join(f"{k} {v}" for k, v in r["cpu_s"].items())),
        ("peak RSS MB", ", ".join(f"{k} {v}" for k, v in r["peak_rss_mb"].items())),
        ("max lag (messages)", ", ".join(f"{k} {v:,}" for k, v in r["max_lag"].items())),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name:<22}{value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", nargs="?", default="quick", help="quick, full or a student count")
    parser.add_argument("--skip", default="", help="phases to leave out: replay,baseline")
    parser.add_argument("--instances", type=int, default=1, help="processes per middle stage")
    args = parser.parse_args()
    skip = frozenset(p for p in args.skip.split(",") if p)
    outcome = asyncio.run(main(SIZES.get(args.size) or int(args.size), skip, args.instances))
    print_table(outcome)
    print(f"\nJSON: {save(outcome)}")
