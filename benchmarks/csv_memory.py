"""Peak memory of the fetcher and the validator streaming a large users.csv (issue: CSV bundles).

Generates a bundle with ROWS users (default 1,000,000) spread over 20 schools, runs the real
fetcher and validator as separate processes against Kafka (and PostgreSQL for the validator's
lookups), waits until every record has passed the validator, and prints each process's peak RSS
(from the kernel's rusage of the child) and the throughput.

    .venv/bin/python -m benchmarks.csv_memory [ROWS]

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL if set, else the local stack (started if needed).
"""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import rostersync_localstack
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from rostersync_cli.actions import request_sync
from rostersync_cli.processes import service_environment
from rostersync_cli.settings import CliSettings
from rostersync_libs.kafka import client_options, ensure_topics
from rostersync_libs.oneroster.columns import USERS_1_1

SCHOOLS = 20


def generate(folder: Path, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.csv").write_text(
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\n"
        "file.orgs,bulk\nfile.users,bulk\n"
    )
    with (folder / "orgs.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "sourcedId",
                "status",
                "dateLastModified",
                "name",
                "type",
                "identifier",
                "parentSourcedId",
            ]
        )
        out.writerow(["district", "", "", "Big District", "district", "", ""])
        for school in range(SCHOOLS):
            out.writerow([f"school-{school}", "", "", f"School {school}", "school", "", "district"])
    with (folder / "users.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(USERS_1_1.names)
        for n in range(rows):
            out.writerow([
                f"user-{n:08d}", "", "", "true", f"school-{n % SCHOOLS}", "student", f"student{n}",
                f"{{SIS:{n}}}", f"Given{n}", f"Family{n % 997}", "", f"ID{n}", f"s{n}@example.org",
                "", "", "", f"{(n % 12) + 1:02d}", "",
            ])  # fmt: skip


def settings_for(tag: str) -> CliSettings:
    settings = CliSettings(
        topic_prefix=f"bench-{tag}.", db_schema=f"bench_{tag}", topic_partitions=3
    )
    if not (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL")):
        info = rostersync_localstack.up()
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": info.kafka_bootstrap,
                "database_url": SecretStr(info.database_url),
            }
        )
    return settings


async def wait_validated(settings: CliSettings, run_id: uuid.UUID, partitions: int) -> int:
    """Until the validator has forwarded its end-of-run markers on every partition.

    Each of its input partitions, once complete, sends a marker to every output partition.
    """
    consumer = AIOKafkaConsumer(
        settings.topics.validated,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records = markers = 0
    needle = str(run_id).encode()
    try:
        while markers < partitions * partitions:
            for messages in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for message in messages:
                    value = message.value or b""
                    if b'"kind":"run_end"' in value and needle in value:
                        markers += 1
                    else:
                        records += 1
    finally:
        await consumer.stop()
    return records


def stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop a service and return its peak RSS in MB (the kernel's rusage of the child)."""
    proc.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss // 1024


async def cleanup(settings: CliSettings) -> None:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
    await conn.close()
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    existing = set(await admin.list_topics())
    await admin.delete_topics([t for t in settings.topics.all() if t in existing])
    await admin.close()


async def main(rows: int) -> None:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        started = time.perf_counter()
        generate(bundle, rows)
        size_mb = (bundle / "users.csv").stat().st_size / 1e6
        print(
            f"generated {rows:,} users ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        tenants = Path(tmp) / "tenants.toml"
        tenants.write_text(
            f'[[tenants]]\nid = "bench"\nname = "Bench"\n[[tenants.sources]]\nid = "csv"\npath = "{bundle}"\n'
        )
        settings = settings_for(tag).model_copy(
            update={"tenants_file": tenants, "log_level": "WARNING"}
        )
        await ensure_topics(settings)
        env = service_environment(settings)
        fetcher = subprocess.Popen([sys.executable, "-m", "rostersync_fetcher"], env=env)  # noqa: ASYNC220
        validator = subprocess.Popen([sys.executable, "-m", "rostersync_validator"], env=env)  # noqa: ASYNC220
        try:
            await asyncio.sleep(3)  # let both join their groups
            started = time.perf_counter()
            command = await request_sync(settings, "bench", None)
            records = await wait_validated(settings, command.run_id, settings.topic_partitions)
            elapsed = time.perf_counter() - started
        finally:
            fetcher_mb, validator_mb = stop(fetcher), stop(validator)
            await cleanup(settings)
    print(f"{'records validated':<28}{records:>12,}")
    print(f"{'wall time (s)':<28}{elapsed:>12.1f}")
    print(f"{'records/s through both':<28}{records / elapsed:>12,.0f}")
    print(f"{'fetcher peak RSS (MB)':<28}{fetcher_mb:>12}")
    print(f"{'validator peak RSS (MB)':<28}{validator_mb:>12}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
