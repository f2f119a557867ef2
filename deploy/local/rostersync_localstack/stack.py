"""Public API: start, stop and inspect the local Kafka + PostgreSQL stack.

State (configs, data, logs, PID files) lives in one folder, see
:func:`default_state_dir`. Data survive ``down``/``up``; only ``reset`` wipes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from . import kafka, postgres
from ._common import StackError

log = logging.getLogger(__name__)

DEFAULT_KAFKA_PORT = 19092
DEFAULT_PG_PORT = 15432
DATABASE = "rostersync"


@dataclass(frozen=True)
class StackInfo:
    """How to reach the running stack (also printed by ``stack up`` for ``eval``)."""

    kafka_bootstrap: str  # "127.0.0.1:19092"
    database_url: str  # "postgresql://postgres@127.0.0.1:15432/rostersync"

    def env(self) -> dict[str, str]:
        """The settings as environment variables, the way the app and tests read them."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap, "DATABASE_URL": self.database_url}


def _find_repo_root() -> Path | None:
    """Walk up from this file to the first folder holding ``.git`` or ``uv.lock``.

    Works from the source tree and from a venv inside the repo alike.
    """
    for folder in Path(__file__).resolve().parents:
        if (folder / ".git").exists() or (folder / "uv.lock").exists():
            return folder
    return None


def default_state_dir() -> Path:
    """$ROSTERSYNC_STACK_DIR, else <repo root>/.stack, else ~/.cache/rostersync/stack."""
    env = os.environ.get("ROSTERSYNC_STACK_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = _find_repo_root()
    if root is not None:
        return root / ".stack"
    return kafka.cache_base() / "stack"


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65534:
        raise StackError(f"{name}={port} is out of range")
    return port


def _configs(state_dir: Path) -> tuple[kafka.KafkaConfig, postgres.PostgresConfig]:
    kafka_port = _port("ROSTERSYNC_STACK_KAFKA_PORT", DEFAULT_KAFKA_PORT)
    return (
        kafka.KafkaConfig(home=state_dir / "kafka", port=kafka_port, controller_port=kafka_port + 1),
        postgres.PostgresConfig(
            home=state_dir / "postgres",
            port=_port("ROSTERSYNC_STACK_PG_PORT", DEFAULT_PG_PORT),
            database=DATABASE,
        ),
    )


def _info(kcfg: kafka.KafkaConfig, pcfg: postgres.PostgresConfig) -> StackInfo:
    return StackInfo(kafka_bootstrap=kcfg.bootstrap, database_url=pcfg.url)


def _prepare_state_dir(state_dir: Path) -> None:
    fresh = not state_dir.exists()
    state_dir.mkdir(parents=True, exist_ok=True)
    # The default lives inside the repo: make it ignore itself so nobody has to
    # touch the project's .gitignore and no data/log file gets committed.
    if fresh and state_dir.name == ".stack":
        (state_dir / ".gitignore").write_text("# Created by rostersync_localstack.\n*\n")


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise up/down/reset on one state dir (e.g. parallel test workers)."""
    _prepare_state_dir(state_dir)
    with (state_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(state_dir: Path | None = None, *, reset: bool = False) -> StackInfo:
    """Start Kafka and PostgreSQL, or reuse them if already running and answering.

    Kafka is launched first and waited for last, so the JVM warms up while
    PostgreSQL starts. With ``reset=True`` everything is stopped and wiped first.
    """
    state_dir = state_dir or default_state_dir()
    kcfg, pcfg = _configs(state_dir)
    if reset:
        _reset(state_dir, kcfg, pcfg)
    with _locked(state_dir):
        started = time.monotonic()
        kafka_pid = kafka.our_pid(kcfg)
        postgres_was_running = postgres.server_pid(pcfg) is not None
        started_kafka = kafka_pid is None
        # Fail fast (or apt-install as root) before spending time on the JVM.
        postgres.ensure_binaries()
        try:
            if kafka_pid is not None:
                log.info("kafka: reusing pid %d", kafka_pid)
            else:
                kafka_pid = kafka.start(kcfg)
            postgres.ensure_running(pcfg)
            kafka.wait_ready(kcfg, kafka_pid)
        except BaseException:
            # Do not leave half a stack behind: undo only what this call started.
            with contextlib.suppress(StackError, OSError):
                if started_kafka:
                    kafka.stop(kcfg)
                if not postgres_was_running:
                    postgres.stop(pcfg)
            raise
        log.info("stack ready in %.1fs (state in %s)", time.monotonic() - started, state_dir)
    return _info(kcfg, pcfg)


def down(state_dir: Path | None = None) -> None:
    """Stop exactly the processes this stack started (by recorded PID). Keeps the data."""
    state_dir = state_dir or default_state_dir()
    if not state_dir.exists():
        return
    kcfg, pcfg = _configs(state_dir)
    with _locked(state_dir):
        _down(kcfg, pcfg)


def _down(kcfg: kafka.KafkaConfig, pcfg: postgres.PostgresConfig) -> None:
    errors: list[str] = []
    # Try both even if one fails, so `down` never strands the other process.
    steps: list[tuple[str, Callable[[], bool]]] = [
        ("kafka", partial(kafka.stop, kcfg)),
        ("postgres", partial(postgres.stop, pcfg)),
    ]
    for name, stop in steps:
        try:
            if not stop():
                log.info("%s: not running", name)
        except StackError as exc:
            errors.append(f"{name}: {exc.message}")
    if errors:
        raise StackError("; ".join(errors))


def _reset(state_dir: Path, kcfg: kafka.KafkaConfig, pcfg: postgres.PostgresConfig) -> None:
    with _locked(state_dir):
        _down(kcfg, pcfg)
        # Remove only what we created: the state dir may be a user-chosen folder.
        postgres.wipe(pcfg)
        shutil.rmtree(kcfg.home, ignore_errors=True)
        log.info("wiped stack data in %s", state_dir)


def reset(state_dir: Path | None = None) -> None:
    """Stop the stack and delete its data, configs and logs (the jar cache is kept)."""
    state_dir = state_dir or default_state_dir()
    kcfg, pcfg = _configs(state_dir)
    _reset(state_dir, kcfg, pcfg)


def status(state_dir: Path | None = None) -> dict[str, str]:
    """One line per component, e.g. {"kafka": "running pid 123 on 127.0.0.1:19092", "postgres": "stopped"}."""
    state_dir = state_dir or default_state_dir()
    kcfg, pcfg = _configs(state_dir)
    return {"kafka": kafka.describe(kcfg), "postgres": postgres.describe(pcfg)}


def info(state_dir: Path | None = None) -> StackInfo:
    """Connection settings for the configured ports, without starting anything."""
    kcfg, pcfg = _configs(state_dir or default_state_dir())
    return _info(kcfg, pcfg)
