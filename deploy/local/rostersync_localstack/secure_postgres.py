"""An opt-in, private PostgreSQL server that only accepts TLS (tests).

    from rostersync_localstack.secure_postgres import tls_postgres
    with tls_postgres() as server:
        server.url(sslmode="verify-full"), server.cafile, server.password ...

A second cluster, started by the default stack's code (:func:`.postgres.ensure_running`, with its
own initdb arguments, pg_hba.conf and options) on a free port in a temporary folder, which it
never shares with the default stack; stopped and deleted when the block ends:

- a CA made at start with ``openssl`` (:func:`.secure.make_certificates`) and a server certificate
  for 127.0.0.1 and localhost signed by it; ``ssl=on``;
- pg_hba.conf has ``hostssl`` lines only: a password login (SCRAM-SHA-256) for every user, and a
  certificate login for :data:`CERT_USER` (the CN of the client certificate, mutual TLS). Plain
  TCP matches no line and is refused; so are Unix sockets;
- it listens on 127.0.0.1 and on :data:`UNNAMED_HOST` (127.0.0.2), an address its certificate
  does not name: there ``verify-full`` must refuse it while ``verify-ca`` accepts it.

Stdlib only, like the rest of this package.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

from . import postgres
from .secure import Tls, free_port, make_certificates

log = logging.getLogger(__name__)

UNNAMED_HOST = "127.0.0.2"  # on the loopback, but not in the server's certificate
CERT_USER = "rostersync-client"  # the client certificate's CN (secure.make_certificates)
_HBA = f"""# Written by rostersync_localstack.secure_postgres: TLS only, nothing over plain TCP.
# TYPE  DATABASE USER          ADDRESS      METHOD
hostssl all      {CERT_USER} 127.0.0.0/8  cert
hostssl all      all           127.0.0.0/8  scram-sha-256
"""


@dataclass(frozen=True)
class TlsPostgres:
    """How to reach a running TLS-only server."""

    port: int
    database: str
    cafile: Path  # the CA that signed the server's certificate (sslrootcert)
    client_certfile: Path  # a certificate for CERT_USER signed by that CA (sslcert) …
    client_keyfile: Path  # … and its key (sslkey)
    home: Path  # its temporary folder (certificates, cluster, log), removed when it stops
    password: str = field(repr=False)  # the superuser's
    user: str = postgres.SUPERUSER

    def url(self, *, host: str = postgres.HOST, user: str | None = None, **params: str) -> str:
        """A DATABASE_URL for ``user`` (the superuser, with its password, by default), with
        libpq's query parameters (``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey`` …)."""
        login = f"{self.user}:{self.password}" if user is None else user
        query = f"?{urlencode(params)}" if params else ""
        return f"postgresql://{login}@{host}:{self.port}/{self.database}{query}"


def _configure(data: Path, *, tls: Tls) -> None:
    """After initdb: TLS-only pg_hba.conf, and the server's certificate, key and CA in its data
    folder (the server checks its key belongs to it and is private)."""
    files = {"server.crt": tls.server_certfile, "server.key": tls.server_keyfile}
    for name, source in {**files, "root.crt": tls.cafile}.items():
        shutil.copyfile(source, data / name)
        (data / name).chmod(0o600)
        postgres.give_to_server(data / name)
    (data / "pg_hba.conf").write_text(_HBA)


@contextlib.contextmanager
def tls_postgres(*, database: str = "rostersync", timeout: float = 90.0) -> Iterator[TlsPostgres]:
    """Start a private TLS-only PostgreSQL; stop it and delete its folder afterwards."""
    home = Path(tempfile.mkdtemp(prefix="rostersync-tls-pg-"))
    home.chmod(0o755)  # as root, the server (the postgres user) must reach its cluster below
    try:
        tls = make_certificates(home / "tls")  # the clients' copies: private to us
        password = secrets.token_hex(16)
        pwfile = home / "pwfile"
        pwfile.write_text(f"{password}\n")
        pwfile.chmod(0o600)
        postgres.give_to_server(pwfile)  # initdb runs as the server's user
        cfg = postgres.PostgresConfig(
            home=home / "postgres",
            port=free_port(),
            database=database,
            password=password,
            sslrootcert=tls.cafile,
        )
        listen = ",".join((postgres.HOST, UNNAMED_HOST))
        try:
            postgres.ensure_running(
                cfg,
                timeout,
                initdb_args=("--auth=scram-sha-256", f"--pwfile={pwfile}"),
                configure=partial(_configure, tls=tls),
                options=[
                    f"-c listen_addresses={shlex.quote(listen)}",
                    "-c ssl=on",
                    "-c ssl_cert_file=server.crt",
                    "-c ssl_key_file=server.key",
                    "-c ssl_ca_file=root.crt",  # verifies client certificates (CERT_USER)
                    "-c password_encryption=scram-sha-256",
                ],
            )
            pwfile.unlink()  # initdb has read it
            bin_dir = postgres.find_bin_dir()
            assert bin_dir is not None  # ensure_running found it
            postgres.psql(bin_dir, cfg, database, f'CREATE ROLE "{CERT_USER}" LOGIN')
            log.info("tls postgres: ready on %s:%d (hostssl only)", postgres.HOST, cfg.port)
            yield TlsPostgres(
                port=cfg.port,
                database=database,
                cafile=tls.cafile,
                client_certfile=tls.client_certfile,
                client_keyfile=tls.client_keyfile,
                home=home,
                password=password,
            )
        finally:
            postgres.stop(cfg)
            postgres.wipe(cfg)
    finally:
        shutil.rmtree(home, ignore_errors=True)
