"""Servers not answering: the CLI prints one line saying which and what to do, exit code 7."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr
from rostersync_cli.settings import CliSettings
from rostersync_cli.unavailable import unavailable_message
from rostersync_libs.run_reports.status import EXIT_REFUSED, EXIT_UNAVAILABLE

from tests.proxy import free_port


def test_the_message_names_the_server_and_the_variable_but_never_the_password() -> None:
    settings = CliSettings(
        database_url=SecretStr("postgresql://app:s3cret@db.example:6543/roster"),
        kafka_bootstrap_servers="kafka.example:9093",
    )
    refused = ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 6543)")
    database = unavailable_message(refused, settings)
    assert database is not None
    assert database.startswith("PostgreSQL is not answering at db.example:6543")
    assert "DATABASE_URL" in database
    assert "s3cret" not in database
    kafka = unavailable_message(KafkaConnectionError("bootstrap"), settings)
    assert kafka is not None
    assert kafka.startswith("Kafka is not answering at kafka.example:9093")
    assert "KAFKA_BOOTSTRAP_SERVERS" in kafka
    assert unavailable_message(ValueError("a bug"), settings) is None


def test_the_cli_with_no_servers_says_one_line_and_exits_7(tmp_path: Path) -> None:
    tenants = tmp_path / "t.toml"
    tenants.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\n[[tenants.sources]]\nid = "c"\npath = "/srv/x"\n'
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/x",
        "ROSTERSYNC_TENANTS_FILE": str(tenants),
    }
    # A sync is written to the operator audit (PostgreSQL) before it goes to Kafka.
    for args, server in ((["runs"], "PostgreSQL"), (["sync", "d1"], "PostgreSQL")):
        done = subprocess.run(
            [sys.executable, "-m", "rostersync_cli", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == EXIT_UNAVAILABLE, done
        assert done.stdout == ""
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"rostersync: {server} is not answering at 127.0.0.1:"), line
        assert "rostersync stack up" in line


def test_one_server_without_the_other_is_refused_with_what_to_set(tmp_path: Path) -> None:
    """KAFKA_BOOTSTRAP_SERVERS without DATABASE_URL (or the reverse) would mix the user's server
    with the local stack's: one line naming both variables, exit 2, nothing started."""
    for given, value, missing in (
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1", "DATABASE_URL"),
        ("DATABASE_URL", "postgresql://u@127.0.0.1:1/db", "KAFKA_BOOTSTRAP_SERVERS"),
    ):
        env = {k: v for k, v in os.environ.items() if "KAFKA" not in k and "DATABASE" not in k}
        done = subprocess.run(
            [sys.executable, "-m", "rostersync_cli", "runs"],
            env={**env, given: value}, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == EXIT_REFUSED
        assert done.stdout == ""
        assert done.stderr == (
            f"rostersync: {given} is set but {missing} is not: set both (your servers), or"
            " neither (the local stack, `rostersync stack up`)\n"
        )
