"""A real, throwaway PostgreSQL cluster run from Debian's packaged binaries.

No system service is involved: the stack runs its own ``initdb`` + ``pg_ctl``
cluster on a private port. ``initdb``/``pg_ctl`` refuse to run as root, so
when we are root every server-side command runs as the ``postgres`` OS user
(``runuser -u postgres --``) on a directory that user owns; as a normal user
the commands simply run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import pwd
import re
import shlex
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._common import StackError, is_root, pid_alive, read_pid, run, tail

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
_OS_USER = "postgres"  # Owner of the cluster files when we run as root.
_APT_HINT = "sudo apt-get update && sudo apt-get install -y postgresql"
# sun_path is 108 bytes on Linux; the socket file is "<dir>/.s.PGSQL.<port>".
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")


@dataclass(frozen=True)
class PostgresConfig:
    """Records live in ``home`` (ours); the cluster itself lives in :meth:`cluster_dir`."""

    home: Path  # <state dir>/postgres
    port: int
    database: str = "rostersync"
    # How this package's own psql logs in: the superuser's password, and the CA to verify the
    # server with (verify-full) when the server speaks TLS. None: trust over plain TCP.
    password: str | None = field(default=None, repr=False)
    sslrootcert: Path | None = None

    def client_env(self) -> dict[str, str]:
        """libpq's environment for psql and pg_isready against this cluster."""
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        if self.sslrootcert is not None:
            env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(self.sslrootcert))
        return env

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{self.database}"

    @property
    def location_file(self) -> Path:
        return self.home / "location"

    @property
    def pid_file(self) -> Path:
        return self.home / "postgres.pid"

    def cluster_dir(self) -> Path:
        """Where data/, the socket and the server log live (see :func:`_prepare_cluster_dir`)."""
        try:
            return Path(self.location_file.read_text().strip())
        except OSError:
            return self.home / "cluster"

    def data_dir(self) -> Path:
        return self.cluster_dir() / "data"

    def log_file(self) -> Path:
        return self.cluster_dir() / "postgres.log"


# ---------------------------------------------------------------------- binaries


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_bin_dir() -> Path | None:
    """$ROSTERSYNC_STACK_PG_BIN, else the newest /usr/lib/postgresql/<ver>/bin (Debian layout)."""
    env = os.environ.get("ROSTERSYNC_STACK_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").is_file() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent if found else None


def ensure_binaries() -> Path:
    """Return the bin dir, installing Debian's ``postgresql`` package if we are root."""
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if not is_root() or shutil.which("apt-get") is None:
        raise StackError(f"PostgreSQL server binaries not found (no initdb); install them with: {_APT_HINT}")
    log.info("postgres: installing Debian package 'postgresql' (once)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], what="apt-get update", env=env, timeout=600)
    run(["apt-get", "install", "-y", "postgresql"], what="apt-get install postgresql", env=env, timeout=900)
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise StackError("installed 'postgresql' but found no /usr/lib/postgresql/*/bin/initdb")
    return bin_dir


def _as_owner(cmd: list[str]) -> list[str]:
    """Prefix with runuser when root, because initdb/pg_ctl refuse to run as root."""
    return ["runuser", "-u", _OS_USER, "--", *cmd] if is_root() else cmd


# --------------------------------------------------------------------- directory


def _owner_can_use(path: Path) -> bool:
    """Can the ``postgres`` user reach and write ``path``? (every parent needs +x)."""
    try:
        run(
            _as_owner(["test", "-d", str(path), "-a", "-w", str(path), "-a", "-x", str(path)]),
            what="access check",
            timeout=30,
        )
    except StackError:
        return False
    return True


def _chown_to_owner(path: Path) -> None:
    entry = pwd.getpwnam(_OS_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def give_to_server(path: Path) -> None:
    """Make ``path`` the server's (the ``postgres`` user's when we are root; already ours if not)."""
    if is_root():
        _chown_to_owner(path)


def _prepare_cluster_dir(cfg: PostgresConfig) -> Path:
    """Create the cluster folder, owned by whoever will run the server.

    As root the folder must belong to ``postgres`` and every parent must be
    traversable by it. A state dir under /root is not, so we then fall back
    to a folder under /var/tmp (kept across reboots, unlike /tmp) and record
    its path in ``<home>/location`` so later runs, ``down`` and ``reset``
    find it.
    """
    cfg.home.mkdir(parents=True, exist_ok=True)
    existing = cfg.cluster_dir()
    if (existing / "data" / "PG_VERSION").is_file():
        return existing
    if not is_root():
        existing.mkdir(parents=True, exist_ok=True)
        return existing
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError as exc:
        raise StackError(f"running as root but there is no '{_OS_USER}' OS user; install it with: {_APT_HINT}") from exc

    preferred = cfg.home / "cluster"
    preferred.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.home, 0o755)  # Let postgres traverse into the cluster dir.
    _chown_to_owner(preferred)
    if _owner_can_use(preferred):
        cfg.location_file.unlink(missing_ok=True)
        return preferred

    tag = hashlib.sha256(str(cfg.home.resolve()).encode()).hexdigest()[:12]
    fallback = Path("/var/tmp") / f"rostersync-stack-{tag}" / "postgres"
    fallback.mkdir(parents=True, exist_ok=True)
    os.chmod(fallback.parent, 0o755)
    _chown_to_owner(fallback)
    if not _owner_can_use(fallback):
        raise StackError(f"the '{_OS_USER}' user can use neither {preferred} nor {fallback}")
    shutil.rmtree(preferred, ignore_errors=True)
    cfg.location_file.write_text(f"{fallback}\n")
    log.info("postgres: %s is not reachable by the %s user; using %s", preferred, _OS_USER, fallback)
    return fallback


# ----------------------------------------------------------------------- process


def server_pid(cfg: PostgresConfig) -> int | None:
    """PID of the postmaster running on *our* data dir (first line of postmaster.pid)."""
    pid = read_pid(cfg.data_dir() / "postmaster.pid")
    return pid if pid is not None and pid_alive(pid) else None


def _port_taken(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def psql(bin_dir: Path, cfg: PostgresConfig, database: str, sql: str) -> str:
    """Run ``sql`` as the superuser; its output, unaligned."""
    # TCP (trust auth, or cfg's password and CA): works as root or any user without runuser,
    # and -X skips the user's ~/.psqlrc so output stays machine-readable.
    return run(
        [
            str(bin_dir / "psql"),
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(cfg.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        ],
        what="psql",
        env=cfg.client_env(),
        timeout=60,
    )


def _wait_ready(bin_dir: Path, cfg: PostgresConfig, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            run(
                [str(bin_dir / "pg_isready"), "-q", "-h", HOST, "-p", str(cfg.port), "-t", "2"],
                what="pg_isready",
                env=cfg.client_env(),
                timeout=10,
            )
            psql(bin_dir, cfg, "postgres", "select 1")
            return
        except StackError as exc:
            if time.monotonic() >= deadline:
                raise StackError(
                    f"postgres did not become ready on {HOST}:{cfg.port} within {timeout:.0f}s",
                    f"{exc}\n--- {cfg.log_file()} ---\n{tail(cfg.log_file())}",
                ) from exc
        time.sleep(0.3)


def ensure_running(
    cfg: PostgresConfig,
    timeout: float = 90.0,
    *,
    initdb_args: Sequence[str] = ("--auth=trust",),
    configure: Callable[[Path], None] | None = None,
    options: Sequence[str] = (),
) -> int:
    """Start (initdb first if needed) or reuse our cluster; create the database. Returns the PID.

    ``initdb_args`` replace the default authentication (trust); ``configure(data_dir)`` runs once
    after initdb (e.g. to write pg_hba.conf or place certificates); ``options`` are the server's
    extra command-line options (``-c name=value``), after (and so over) the defaults.
    """
    bin_dir = ensure_binaries()
    cluster = _prepare_cluster_dir(cfg)
    data = cluster / "data"

    pid = server_pid(cfg)
    if pid is None:
        if not (data / "PG_VERSION").is_file():
            # A half-finished initdb leaves a non-empty dir that initdb refuses; it is ours.
            shutil.rmtree(data, ignore_errors=True)
            run(
                _as_owner(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        SUPERUSER,
                        *initdb_args,
                        "--encoding=UTF8",
                        "--no-locale",  # C collation: deterministic, needs no OS locales.
                    ]
                ),
                what="initdb",
                cwd=cluster,
                timeout=300,
            )
            if configure is not None:
                configure(data)
            log.info("postgres: initialised %s", data)
        if _port_taken(cfg.port):
            raise StackError(
                f"port {HOST}:{cfg.port} is already in use by a process this stack did not start; "
                "stop it or set ROSTERSYNC_STACK_PG_PORT"
            )
        # Unix socket next to the data; skipped if the path is too long for sun_path
        # (clients here use TCP anyway).
        socket_dir = str(cluster) if len(str(cluster)) <= _MAX_SOCKET_DIR else ""
        # fsync/synchronous_commit/full_page_writes off: this is a disposable
        # dev/test cluster where speed matters and a crash may lose data.
        # Never use these settings for data anyone cares about.
        options = " ".join(
            [
                f"-p {cfg.port}",
                f"-k {shlex.quote(socket_dir)}",
                f"-c listen_addresses={HOST}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                *options,
            ]
        )
        try:
            run(
                _as_owner(
                    [
                        str(bin_dir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-l",
                        str(cluster / "postgres.log"),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        str(int(timeout)),
                        "start",
                    ]
                ),
                what="pg_ctl start",
                cwd=cluster,
                timeout=timeout + 30,
            )
        except StackError as exc:
            raise StackError(exc.message, f"--- {cfg.log_file()} ---\n{tail(cfg.log_file())}") from exc
        pid = server_pid(cfg)
        log.info("postgres: started pid %s on %s:%d (data %s)", pid, HOST, cfg.port, data)
    _wait_ready(bin_dir, cfg, timeout)
    pid = server_pid(cfg)
    if pid is None:
        raise StackError("postgres answered but its postmaster.pid is gone", tail(cfg.log_file()))
    cfg.pid_file.write_text(f"{pid}\n")

    exists = psql(bin_dir, cfg, "postgres", f"select 1 from pg_database where datname = '{cfg.database}'")
    if not exists.strip():
        psql(bin_dir, cfg, "postgres", f'create database "{cfg.database}"')
        log.info("postgres: created database %s", cfg.database)
    return pid


def stop(cfg: PostgresConfig, timeout: float = 60.0) -> bool:
    """``pg_ctl stop -m fast`` on our data dir, as its owner. True if a server ran."""
    pid = server_pid(cfg)
    stopped = False
    if pid is not None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise StackError(f"postgres pid {pid} is running but pg_ctl is missing; install: {_APT_HINT}")
        log.info("postgres: stopping pid %d", pid)
        run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(cfg.data_dir()),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "stop",
                ]
            ),
            what="pg_ctl stop",
            cwd=cfg.cluster_dir(),
            timeout=timeout + 30,
        )
        stopped = True
    cfg.pid_file.unlink(missing_ok=True)
    return stopped


def describe(cfg: PostgresConfig) -> str:
    """One-line status for ``stack status``."""
    pid = server_pid(cfg)
    if pid is None:
        return "stopped"
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        try:
            run([str(bin_dir / "pg_isready"), "-q", "-h", HOST, "-p", str(cfg.port), "-t", "2"], what="pg_isready")
        except StackError:
            return f"unresponsive pid {pid} on {HOST}:{cfg.port} (data {cfg.data_dir()})"
    return f"running pid {pid} on {HOST}:{cfg.port} (data {cfg.data_dir()})"


def wipe(cfg: PostgresConfig) -> None:
    """Delete the cluster (wherever it lives) and our records. Call :func:`stop` first."""
    cluster = cfg.cluster_dir()
    shutil.rmtree(cluster, ignore_errors=True)
    if cluster.name == "postgres" and cluster.parent.name.startswith("rostersync-stack-"):
        shutil.rmtree(cluster.parent, ignore_errors=True)  # Our /var/tmp fallback folder.
    shutil.rmtree(cfg.home, ignore_errors=True)
