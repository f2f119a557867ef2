"""The DATABASE_URL's password is in no error the product prints: not when the URL's TLS options
are wrong (the CLI says one line), not when the settings are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from rostersync_cli.settings import CliSettings
from rostersync_libs.run_reports.status import EXIT_REFUSED

from tests.proxy import free_port

PASSWORD = "pw-5f0c2a9e7d41b3"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "No such file"),
        ("sslmode=verify-fully", "`sslmode` parameter must be one of"),
    ],
)
def test_a_bad_tls_option_is_one_line_without_the_password(
    tmp_path: Path, options: str, said: str
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://app:{PASSWORD}@127.0.0.1:{free_port()}/x?{options}",
        # both servers named (one alone is refused before anything else)
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "ROSTERSYNC_TENANTS_FILE": str(tmp_path / "none.toml"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "rostersync_cli", "runs"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # Refused, not "not answering" (exit 7): waiting for the server would not mend it.
    assert done.returncode == EXIT_REFUSED, done
    (line,) = done.stderr.strip().splitlines()
    assert said in line
    assert PASSWORD not in done.stderr + done.stdout


def test_refused_settings_do_not_quote_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # A model-level check fails: pydantic quotes the whole input, the URL included (shortened).
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{PASSWORD}@db:5432/roster")
    monkeypatch.setenv("ROSTERSYNC_KAFKA_SASL_USERNAME", "cli")
    with pytest.raises(ValidationError) as refused:
        CliSettings()
    assert "ROSTERSYNC_KAFKA_SECURITY_PROTOCOL" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    assert PASSWORD not in repr(CliSettings(_env_file=None, kafka_sasl_username=None))
