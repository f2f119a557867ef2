"""Running the four services as child processes of the CLI (demo, ``rostersync serve``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rostersync_libs.settings import ServiceSettings

SERVICES = ("fetcher", "validator", "mapper", "writer")


def kafka_security_environment(settings: ServiceSettings) -> dict[str, str | None]:
    """The Kafka security settings as environment variables; None: the variable must be unset."""
    password = settings.kafka_sasl_password
    optional = {
        "ROSTERSYNC_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "ROSTERSYNC_KAFKA_SASL_USERNAME": settings.kafka_sasl_username,
        "ROSTERSYNC_KAFKA_SASL_PASSWORD": password.get_secret_value() if password else None,
        "ROSTERSYNC_KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "ROSTERSYNC_KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "ROSTERSYNC_KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    return {
        "ROSTERSYNC_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
        **{name: None if value is None else str(value) for name, value in optional.items()},
    }


def service_environment(settings: ServiceSettings) -> dict[str, str]:
    """The environment that points a service at the same servers and namespaces as ``settings``,
    connecting to Kafka as ``settings`` does (protocol, CA and client certificate, SASL user)."""
    env = dict(os.environ)
    env.update(
        {
            "ROSTERSYNC_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "ROSTERSYNC_DATABASE_URL": settings.database_url.get_secret_value(),
            "ROSTERSYNC_TOPIC_PREFIX": settings.topic_prefix,
            "ROSTERSYNC_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "ROSTERSYNC_DB_SCHEMA": settings.db_schema,
            "ROSTERSYNC_CONTROL_SCHEMA": settings.control,
            "ROSTERSYNC_TENANTS_FILE": str(settings.tenants_file),
            "ROSTERSYNC_LOG_LEVEL": settings.log_level,
        }
    )
    # A setting the parent does not have is removed, not inherited from the parent's environment.
    for name, value in kafka_security_environment(settings).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
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
def running_services(
    settings: ServiceSettings, services: tuple[str, ...] = SERVICES
) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [start_service(name, settings) for name in services]
    try:
        yield processes
    finally:
        stop_all(processes)


class Supervisor:
    """``rostersync serve``: the four services as children, each restarted when it dies.

    A child that exits is started again after a backoff that doubles while it keeps dying soon
    after a start (1 s, 2 s, … 60 s) and resets once it has run for a minute: one line per
    restart, never a tight loop. ``stop`` ends the supervision and stops every child.
    """

    HEALTHY_AFTER = 60.0
    MAX_BACKOFF = 60.0

    def __init__(self, settings: ServiceSettings, services: tuple[str, ...] = SERVICES) -> None:
        self._settings = settings
        self.children = {name: start_service(name, settings) for name in services}
        self.restarts = dict.fromkeys(services, 0)
        self._started = dict.fromkeys(services, time.monotonic())
        self._backoff = dict.fromkeys(services, 1.0)
        self._due: dict[str, float] = {}
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, poll_seconds: float = 0.5) -> None:
        try:
            while not self._stop.wait(poll_seconds):
                self.check()
        finally:
            stop_all(list(self.children.values()))

    def check(self) -> None:
        """Restart every child that has died and whose backoff has passed."""
        now = time.monotonic()
        for name, proc in self.children.items():
            code = proc.poll()
            if code is None:
                if now - self._started[name] >= self.HEALTHY_AFTER:
                    self._backoff[name] = 1.0
                continue
            due = self._due.get(name)
            if due is None:
                delay = self._backoff[name]
                self._due[name] = now + delay
                print(
                    f"rostersync serve: {name} exited with code {code}; restarting in {delay:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            if now < due:
                continue
            del self._due[name]
            self._backoff[name] = min(self._backoff[name] * 2, self.MAX_BACKOFF)
            self.children[name] = start_service(name, self._settings)
            self._started[name] = now
            self.restarts[name] += 1
