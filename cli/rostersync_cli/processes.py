"""Running the four services as child processes of the CLI (demo, ``rostersync serve``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rostersync_libs.settings import ServiceSettings

SERVICES = ("fetcher", "validator", "mapper", "writer")


def service_environment(settings: ServiceSettings) -> dict[str, str]:
    """The environment that points a service at the same servers and namespaces as ``settings``."""
    env = dict(os.environ)
    env.update(
        {
            "ROSTERSYNC_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "ROSTERSYNC_DATABASE_URL": settings.database_url.get_secret_value(),
            "ROSTERSYNC_TOPIC_PREFIX": settings.topic_prefix,
            "ROSTERSYNC_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "ROSTERSYNC_DB_SCHEMA": settings.db_schema,
            "ROSTERSYNC_TENANTS_FILE": str(settings.tenants_file),
            "ROSTERSYNC_LOG_LEVEL": settings.log_level,
        }
    )
    return env


def start_service(name: str, settings: ServiceSettings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"rostersync_{name}"], env=service_environment(settings)
    )


def stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM lets each service finish its batch; SIGKILL only if it does not stop in time."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_services(settings: ServiceSettings) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [start_service(name, settings) for name in SERVICES]
    try:
        yield processes
    finally:
        stop_all(processes)
