"""The operator's command in its own process, as a script would run it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rostersync_libs.run_reports.status import EXIT_REFUSED
from rostersync_libs.settings import ServiceSettings


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def cli(settings: ServiceSettings, tenants: Path, *args: str, timeout: float = 180) -> Result:
    """``rostersync ARGS`` in its own process, configured by environment variables only."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "ROSTERSYNC_DB_SCHEMA": settings.db_schema,
        "ROSTERSYNC_TOPIC_PREFIX": settings.topic_prefix,
        "ROSTERSYNC_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "ROSTERSYNC_TENANTS_FILE": str(tenants),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rostersync_cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def refused(result: Result) -> str:
    """The one line a refusal prints (and asserts it is a refusal, not a crash)."""
    assert result.code == EXIT_REFUSED, result
    assert "Traceback" not in result.err, result.err
    assert result.out == "", result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0]
