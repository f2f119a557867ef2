"""A real single-node Apache Kafka (KRaft) broker assembled from Maven Central jars.

There is no Docker on the project's machines and the Apache release tarball
is not reachable (only package registries are), so the broker's jars are
resolved with Maven from ``deploy/local/kafka/pom.xml`` once, cached, and run
with plain ``java``. The readiness checks speak the Kafka wire protocol with
the stdlib so this package needs no third-party dependency.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._common import StackError, pid_alive, process_cmdline, read_pid, run, tail, which_or_fail

log = logging.getLogger(__name__)

#: Pinned and checked: kafka_2.13-4.1.1.jar holds kafka/Kafka.class and
#: kafka/tools/StorageTool.class. Must match <kafka.version> in kafka/pom.xml.
KAFKA_VERSION = "4.1.1"
HOST = "127.0.0.1"

_API_METADATA = 3
_API_VERSIONS = 18
_CLIENT_ID = b"rostersync-stack"


@dataclass(frozen=True)
class KafkaConfig:
    """Where one broker keeps its files and which ports it listens on."""

    home: Path  # <state dir>/kafka
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "kafka.out"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"


# --------------------------------------------------------------------------- jars


def _assets_dir() -> Path:
    """Folder holding pom.xml and log4j2.xml.

    A wheel carries them inside the package (``_kafka``, see pyproject.toml);
    a source checkout has them next to the package in ``deploy/local/kafka``.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "_kafka", here.parent / "kafka"):
        if (candidate / "pom.xml").is_file():
            return candidate
    raise StackError(f"cannot find kafka/pom.xml next to {here}")


def cache_base() -> Path:
    """Base cache folder: $ROSTERSYNC_CACHE_DIR, else ~/.cache/rostersync."""
    env = os.environ.get("ROSTERSYNC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rostersync"


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Exclusive flock, so two concurrent `up`s never resolve or start twice."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_jars() -> Path:
    """Return the folder of broker jars, resolving them with Maven the first time.

    A marker file holding a hash of the pom is written only after the jars
    were copied and moved into place, so an interrupted download (or an edited
    pom) is redone instead of leaving a broken classpath behind.
    """
    pom = _assets_dir() / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    base = cache_base() / f"kafka-{KAFKA_VERSION}"
    libs = base / "libs"
    marker = base / "libs.complete"

    def cached() -> bool:
        try:
            return libs.is_dir() and marker.read_text().strip() == digest
        except OSError:
            return False

    if cached():
        return libs
    with _locked(base / ".lock"):
        if cached():  # Another process finished while we waited for the lock.
            return libs
        mvn = which_or_fail("mvn", "install Maven (Debian: apt-get install -y maven)")
        log.info("resolving Kafka %s jars from Maven Central into %s (once)", KAFKA_VERSION, libs)
        work = Path(tempfile.mkdtemp(prefix="resolve-", dir=base))
        try:
            # Work on a copy so Maven never writes into the source tree.
            shutil.copy2(pom, work / "pom.xml")
            out = work / "libs"
            run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(work / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={out}",
                    "-DincludeScope=runtime",
                ],
                what="resolving Kafka jars with Maven",
                cwd=work,
                timeout=900,
            )
            for expected in (f"kafka_2.13-{KAFKA_VERSION}.jar", "log4j-core-", "log4j-slf4j"):
                if not any(p.name.startswith(expected) for p in out.iterdir()):
                    raise StackError(
                        f"Maven did not produce {expected}*; is kafka/pom.xml pinned to "
                        f"{KAFKA_VERSION} with a log4j binding?"
                    )
            marker.unlink(missing_ok=True)
            if libs.exists():
                shutil.rmtree(libs)
            out.rename(libs)
            marker.write_text(digest + "\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


# ------------------------------------------------------------------------ config


def write_properties(cfg: KafkaConfig) -> None:
    """Write server.properties for one combined broker+controller node.

    Rewritten on every start so a port change takes effect; the cluster
    identity lives in data/meta.properties, which is kept.
    """
    lines = [
        "# Generated by rostersync_localstack; rewritten on every start.",
        "process.roles=broker,controller",
        "node.id=1",
        # Static voters: the single node is its own quorum.
        f"controller.quorum.voters=1@{HOST}:{cfg.controller_port}",
        f"listeners=PLAINTEXT://{HOST}:{cfg.port},CONTROLLER://{HOST}:{cfg.controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{cfg.port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={cfg.data_dir}",
        # Topics are created on first use, with one partition, as apps/tests expect.
        "auto.create.topics.enable=true",
        "num.partitions=1",
        "default.replication.factor=1",
        "min.insync.replicas=1",
        # Only one broker exists, so every internal topic must have RF 1 / min ISR 1.
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "share.coordinator.state.topic.num.partitions=1",
        # No 3 s wait for more members before the first rebalance: tests join fast.
        "group.initial.rebalance.delay.ms=0",
        # Two cores: the defaults (3 network / 8 io threads) only add contention.
        "num.network.threads=2",
        "num.io.threads=4",
        "",
    ]
    cfg.properties.write_text("\n".join(lines))


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return which_or_fail("java", "install a JDK/JRE 17+ (Debian: apt-get install -y openjdk-17-jre-headless)")


def _jvm_base(cfg: KafkaConfig, libs: Path, *jvm_options: str) -> list[str]:
    return [
        _java(),
        *jvm_options,
        f"-Dlog4j2.configurationFile={_assets_dir() / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={cfg.logs_dir}",
        # Java expands the trailing '*' itself; no shell is involved.
        "-cp",
        f"{libs}/*",
    ]


def format_storage(cfg: KafkaConfig, libs: Path, extra_args: Sequence[str] = (), cluster_id: str | None = None) -> None:
    """Format the KRaft log dir once (what bin/kafka-storage.sh does).

    ``extra_args`` go to ``kafka-storage format`` (the secure broker's ``--add-scram`` users);
    ``cluster_id`` saves the JVM that would make one.
    """
    if (cfg.data_dir / "meta.properties").is_file():
        return
    base = _jvm_base(cfg, libs)
    if cluster_id is None:
        cluster_id = (
            run([*base, "kafka.tools.StorageTool", "random-uuid"], what="kafka storage random-uuid", timeout=120)
            .strip()
            .splitlines()[-1]
        )
    run(
        [*base, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(cfg.properties), *extra_args],
        what="kafka storage format",
        timeout=120,
    )
    log.info("kafka: formatted %s (cluster id %s)", cfg.data_dir, cluster_id)


# ----------------------------------------------------------------------- process


def our_pid(cfg: KafkaConfig) -> int | None:
    """PID from our PID file if that process is alive *and* is our broker.

    The command-line check guards against PID reuse (e.g. after a reboot):
    we never signal a process just because its number is in a stale file.
    """
    pid = read_pid(cfg.pid_file)
    if pid is None or not pid_alive(pid):
        return None
    argv = process_cmdline(pid)
    if argv and ("kafka.Kafka" not in argv or str(cfg.properties) not in argv):
        return None
    return pid


def _port_taken(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def start(
    cfg: KafkaConfig,
    *,
    properties: Callable[[KafkaConfig], None] = write_properties,
    format_args: Sequence[str] = (),
    cluster_id: str | None = None,
) -> int:
    """Start the broker detached (own session, survives this process) and return its PID.

    Does not wait for readiness: call :func:`wait_ready` so the caller can
    start PostgreSQL meanwhile. ``properties`` writes server.properties (the
    secure broker's adds TLS, SASL and the authorizer), ``format_args`` and
    ``cluster_id`` go to :func:`format_storage`.
    """
    libs = ensure_jars()
    for path in (cfg.home, cfg.data_dir, cfg.logs_dir):
        path.mkdir(parents=True, exist_ok=True)
    for port in (cfg.port, cfg.controller_port):
        if _port_taken(port):
            raise StackError(
                f"port {HOST}:{port} is already in use by a process this stack did not start; "
                "stop it or set ROSTERSYNC_STACK_KAFKA_PORT (controller uses port+1)"
            )
    properties(cfg)
    format_storage(cfg, libs, format_args, cluster_id)
    cmd = [
        *_jvm_base(
            cfg,
            libs,
            # A small heap is plenty for a dev/test broker on a 2-core box.
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
        ),
        "kafka.Kafka",
        str(cfg.properties),
    ]
    with cfg.stdout_log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cfg.home,
            start_new_session=True,  # Not killed by the terminal's Ctrl-C / hang-up.
            close_fds=True,
        )
    cfg.pid_file.write_text(f"{proc.pid}\n")
    log.info("kafka: started pid %d, logs in %s", proc.pid, cfg.logs_dir)
    return proc.pid


def wait_ready(
    cfg: KafkaConfig, pid: int, timeout: float = 90.0, *, check: Callable[[int, float], None] | None = None
) -> None:
    """Block until the broker answers ApiVersions and a Metadata request listing itself.

    ``check(port, timeout)`` replaces that probe (a TLS listener needs a TLS one).
    """
    check = check or probe
    deadline = time.monotonic() + timeout
    last_error = "no attempt yet"
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise StackError(
                f"kafka (pid {pid}) exited during startup; see {cfg.logs_dir}",
                _log_tails(cfg),
            )
        try:
            check(cfg.port, 2.0)
            return
        except (OSError, ValueError) as exc:
            last_error = str(exc) or type(exc).__name__
        time.sleep(0.25)
    raise StackError(
        f"kafka did not become ready on {cfg.bootstrap} within {timeout:.0f}s ({last_error})",
        _log_tails(cfg),
    )


def _log_tails(cfg: KafkaConfig) -> str:
    return f"--- {cfg.server_log} ---\n{tail(cfg.server_log)}\n--- {cfg.stdout_log} ---\n{tail(cfg.stdout_log, 10)}"


def stop(cfg: KafkaConfig, timeout: float = 30.0) -> bool:
    """SIGTERM our broker (controlled shutdown), SIGKILL after ``timeout``. True if one ran."""
    pid = our_pid(cfg)
    stopped = False
    if pid is not None:
        log.info("kafka: stopping pid %d", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            log.warning("kafka: pid %d ignored SIGTERM for %.0fs, sending SIGKILL", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.1)
        stopped = True
    cfg.pid_file.unlink(missing_ok=True)
    return stopped


def describe(cfg: KafkaConfig) -> str:
    """One-line status for ``stack status``."""
    pid = our_pid(cfg)
    if pid is None:
        return "stopped"
    try:
        probe(cfg.port, timeout=1.0)
    except (OSError, ValueError) as exc:
        return f"unresponsive pid {pid} on {cfg.bootstrap} ({exc})"
    return f"running pid {pid} on {cfg.bootstrap}"


# ---------------------------------------------------------------------- protocol


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        chunks += chunk
    return bytes(chunks)


def _request(sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    """Send one request (request header v1, i.e. non-flexible) and return the response body."""
    header = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    message = header + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    payload = _recv_exact(sock, size)
    (got_id,) = struct.unpack_from(">i", payload, 0)
    if got_id != correlation_id:
        raise ValueError(f"correlation id mismatch: sent {correlation_id}, got {got_id}")
    return payload[4:]  # Response header v0 is just the correlation id.


def api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    """ApiVersions v0 (kept by every broker for negotiation); returns {api_key: (min, max)}."""
    body = _request(sock, _API_VERSIONS, 0, 1, b"")
    (error_code, count) = struct.unpack_from(">hi", body, 0)
    if error_code != 0:
        raise ValueError(f"ApiVersions error code {error_code}")
    ranges: dict[int, tuple[int, int]] = {}
    for i in range(count):
        key, lo, hi = struct.unpack_from(">hhh", body, 6 + 6 * i)
        ranges[key] = (lo, hi)
    return ranges


def metadata_broker_count(sock: socket.socket, supported: tuple[int, int]) -> int | None:
    """Number of brokers in a Metadata response, or None if no v4-v8 is supported.

    v4-v8 are the last non-flexible versions, so they need no tagged-field
    encoding, and their responses all start with throttle_time_ms + brokers.
    """
    lo, hi = supported
    versions = [v for v in range(8, 3, -1) if lo <= v <= hi]
    if not versions:
        return None
    version = versions[0]
    body = struct.pack(">ib", -1, 0)  # topics = null (all), allow_auto_topic_creation = false
    if version >= 8:
        body += struct.pack(">bb", 0, 0)  # no authorized-operations lookups
    response = _request(sock, _API_METADATA, version, 2, body)
    (_throttle_ms, brokers) = struct.unpack_from(">ii", response, 0)
    return int(brokers)


def probe(port: int, timeout: float = 2.0) -> None:
    """Raise unless a broker on ``port`` answers real requests (a TCP accept is not enough)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        ranges = api_versions(sock)
        if _API_METADATA in ranges:
            brokers = metadata_broker_count(sock, ranges[_API_METADATA])
            if brokers is not None and brokers < 1:
                raise ValueError("Metadata lists no broker yet")
