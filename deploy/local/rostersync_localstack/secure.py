"""An opt-in, private Kafka broker that only speaks SASL_SSL, with ACLs enforced (tests, benchmarks).

    from rostersync_localstack.secure import secure_broker
    with secure_broker(["fetcher", "validator"]) as broker:
        broker.bootstrap, broker.cafile, broker.passwords["validator"], broker.admin ...

It is a second single-node KRaft broker on free ports in a temporary folder, built from the same
jars and code as the default stack (:mod:`.kafka`: ``ensure_jars``, ``start``, ``wait_ready``,
``stop``), which it never touches:

- one client listener, SASL_SSL: TLS with a certificate signed by a CA made at start (``openssl``),
  SCRAM-SHA-512 or SCRAM-SHA-256 logins whose users are written at format time
  (``kafka-storage format --add-scram``), mutual TLS accepted when a client offers a certificate;
- the controller listener (KRaft's own traffic, on 127.0.0.1 only) is SASL_PLAINTEXT with a PLAIN
  login for the broker itself: SCRAM cannot serve controllers, and an unauthenticated listener would
  have to make ``User:ANONYMOUS`` a super user;
- ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: nobody but ``User:admin``
  (the super user) may do anything an ACL does not allow. Topics and ACLs are created by the caller
  with the admin's login (see ``rostersync_libs.kafka_acls``); topics are never auto-created.

Stdlib only, like the rest of this package.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import shutil
import socket
import ssl
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from . import kafka
from ._common import run, which_or_fail

log = logging.getLogger(__name__)

ADMIN = "admin"
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_DAYS = "7"  # a test broker's certificates need not outlive its week


@dataclass(frozen=True)
class Tls:
    """PEM files made by :func:`make_certificates`."""

    cafile: Path  # the CA's certificate: what clients trust
    server_keystore: Path  # the broker's key and certificate chain (Kafka's PEM keystore)
    server_certfile: Path  # the server's certificate alone (PostgreSQL's ssl_cert_file) …
    server_keyfile: Path  # … and its key (ssl_key_file)
    client_certfile: Path  # a client certificate signed by the CA (mutual TLS)
    client_keyfile: Path


@dataclass(frozen=True)
class SecureBroker:
    """How to reach a running secure broker."""

    bootstrap: str
    cafile: Path
    client_certfile: Path
    client_keyfile: Path
    home: Path  # its temporary folder (configuration, data, logs), removed when it stops
    passwords: dict[str, str] = field(repr=False)  # user -> SCRAM password (admin included)
    admin: str = ADMIN
    mechanism: str = MECHANISMS[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((kafka.HOST, 0))
        return int(sock.getsockname()[1])


def make_certificates(folder: Path, hosts: Iterable[str] = (kafka.HOST, "localhost")) -> Tls:
    """A CA made now, a server certificate for ``hosts`` and a client certificate, all signed by it.

    Keys are unencrypted PKCS#8 (what Kafka's PEM keystore reads without a key password), readable
    by their owner only.
    """
    hosts = tuple(hosts)
    openssl = which_or_fail("openssl", "install OpenSSL (Debian: apt-get install -y openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    tag = secrets.token_hex(4)
    ca_key, ca_pem = folder / "ca.key", folder / "ca.pem"
    run(
        [openssl, "req", "-x509", "-new", "-newkey", "rsa:2048", "-noenc", "-keyout", str(ca_key),
         "-out", str(ca_pem), "-days", _DAYS, "-subj", f"/CN=rostersync test CA {tag}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        what="openssl: making the test CA",
    )  # fmt: skip
    names = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)

    def issue(name: str, subject: str, usage: str, alt_names: str | None) -> tuple[Path, Path]:
        key, csr, pem, ext = (folder / f"{name}{suffix}" for suffix in (".key", ".csr", ".pem", ".ext"))
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
            + (f"subjectAltName={alt_names}\n" if alt_names else "")
        )
        run(
            [openssl, "req", "-new", "-newkey", "rsa:2048", "-noenc", "-keyout", str(key),
             "-out", str(csr), "-subj", f"/CN={subject}"],
            what=f"openssl: {name} key",
        )  # fmt: skip
        run(
            [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
             "-set_serial", f"0x{secrets.token_hex(8)}", "-days", _DAYS, "-extfile", str(ext),
             "-out", str(pem)],
            what=f"openssl: signing the {name} certificate",
        )  # fmt: skip
        csr.unlink()
        ext.unlink()
        key.chmod(0o600)
        return key, pem

    server_key, server_pem = issue("server", hosts[0], "serverAuth,clientAuth", names)
    client_key, client_pem = issue("client", "rostersync-client", "clientAuth", None)
    keystore = folder / "server-keystore.pem"
    keystore.write_text(server_key.read_text() + server_pem.read_text() + ca_pem.read_text())
    keystore.chmod(0o600)
    return Tls(
        cafile=ca_pem,
        server_keystore=keystore,
        server_certfile=server_pem,
        server_keyfile=server_key,
        client_certfile=client_pem,
        client_keyfile=client_key,
    )


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _jaas(module: str, **options: str) -> str:
    values = "".join(f' {k}="{v}"' for k, v in options.items())
    return f"{module} required{values};"


def write_secure_properties(cfg: kafka.KafkaConfig, tls: Tls, admin_password: str) -> None:
    """The default stack's server.properties with its listeners replaced by secure ones."""
    kafka.write_properties(cfg)
    values: dict[str, str] = {}
    for line in cfg.properties.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    values.update(
        {
            "listeners": f"CLIENT://{kafka.HOST}:{cfg.port},CONTROLLER://{kafka.HOST}:{cfg.controller_port}",
            "advertised.listeners": f"CLIENT://{kafka.HOST}:{cfg.port}",
            "listener.security.protocol.map": "CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "CLIENT",
            # Clients: SCRAM over TLS. The broker logs into itself as the admin if it ever must.
            "listener.name.client.sasl.enabled.mechanisms": ",".join(MECHANISMS),
            "sasl.mechanism.inter.broker.protocol": MECHANISMS[0],
            "listener.name.client.scram-sha-512.sasl.jaas.config": _jaas(
                scram, username=ADMIN, password=admin_password
            ),
            "listener.name.client.scram-sha-256.sasl.jaas.config": _jaas(scram),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.server_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.cafile),
            # A client certificate is checked against the CA when one is offered (mutual TLS).
            "ssl.client.auth": "requested",
            # KRaft's controller: PLAIN, one user (the broker itself), on 127.0.0.1 only.
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": _jaas(
                plain, username=ADMIN, password=admin_password, **{f"user_{ADMIN}": admin_password}
            ),
            "authorizer.class.name": AUTHORIZER,
            "super.users": f"User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
            # Topics are the operator's (the admin's) to create, as on a managed service.
            "auto.create.topics.enable": "false",
        }
    )
    lines = ["# Generated by rostersync_localstack.secure; rewritten on every start."]
    lines += [f"{key}={value}" for key, value in values.items()]
    cfg.properties.write_text("\n".join(lines) + "\n")
    cfg.properties.chmod(0o600)  # it holds the admin's password


def tls_probe(cafile: Path) -> Callable[[int, float], None]:
    """A readiness check for a SASL_SSL listener: a verified TLS handshake, then ApiVersions.

    ApiVersions is the one request a SASL listener answers before a login; the broker opens its
    client listener only once its metadata (users, ACLs) is loaded.
    """
    context = ssl.create_default_context(cafile=str(cafile))

    def check(port: int, timeout: float) -> None:
        with (
            socket.create_connection((kafka.HOST, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=kafka.HOST) as sock,
        ):
            sock.settimeout(timeout)
            kafka.api_versions(sock)

    return check


def _cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints (a UUID, URL-safe base64, no padding)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@contextlib.contextmanager
def secure_broker(users: Iterable[str] = (), *, timeout: float = 120.0) -> Iterator[SecureBroker]:
    """Start a private SASL_SSL broker with ACLs enforced; stop it and delete its folder afterwards.

    Every user (and ``admin``, the super user) gets a random password, for both SCRAM mechanisms.
    """
    home = Path(tempfile.mkdtemp(prefix="rostersync-secure-kafka-"))
    try:
        tls = make_certificates(home / "tls")
        passwords = {name: secrets.token_hex(16) for name in (ADMIN, *users)}
        scram = [
            arg
            for name, password in passwords.items()
            for mechanism in MECHANISMS
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]
        cfg = kafka.KafkaConfig(home=home / "kafka", port=free_port(), controller_port=free_port())
        pid = kafka.start(
            cfg,
            properties=partial(write_secure_properties, tls=tls, admin_password=passwords[ADMIN]),
            format_args=scram,
            cluster_id=_cluster_id(),
        )
        try:
            kafka.wait_ready(cfg, pid, timeout, check=tls_probe(tls.cafile))
            log.info("secure kafka: ready on %s (SASL_SSL, ACLs enforced)", cfg.bootstrap)
            yield SecureBroker(
                bootstrap=cfg.bootstrap,
                cafile=tls.cafile,
                client_certfile=tls.client_certfile,
                client_keyfile=tls.client_keyfile,
                passwords=passwords,
                home=home,
            )
        finally:
            kafka.stop(cfg)
    finally:
        shutil.rmtree(home, ignore_errors=True)
