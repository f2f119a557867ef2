"""deploy/compose.yaml and deploy/Dockerfile as written (no Docker engine here to run them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).parents[2] / "deploy"
SERVICES = {"fetcher", "validator", "mapper", "writer", "api"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_every_service_has_a_readiness_healthcheck_on_its_own_port() -> None:
    services = compose()["services"]
    assert set(services) >= SERVICES
    for name in SERVICES:
        check = " ".join(services[name]["healthcheck"]["test"])
        port = "8470" if name == "api" else services[name]["environment"]["ROSTERSYNC_METRICS_PORT"]
        assert f"http://127.0.0.1:{port}/readyz" in check, name


def test_kafka_keeps_its_topics_on_the_volume_and_uploads_are_shared_with_the_fetcher() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert any(v.endswith(":" + kafka["environment"]["KAFKA_LOG_DIRS"]) for v in kafka["volumes"])
    upload_dir = services["api"]["environment"]["ROSTERSYNC_UPLOAD_DIR"]
    for name in ("api", "fetcher"):
        assert f"uploads:{upload_dir}" in services[name]["volumes"], name


def test_the_image_runs_as_an_unprivileged_user_owning_the_upload_folder() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert users == ["10001"]
    assert "chown -R 10001 /var/lib/rostersync" in dockerfile
    upload_dir = compose()["services"]["api"]["environment"]["ROSTERSYNC_UPLOAD_DIR"]
    assert upload_dir.startswith("/var/lib/rostersync/")


def test_the_tenants_file_and_the_rosters_are_one_host_folder_in_every_service() -> None:
    services = compose()["services"]
    rosters = "${ROSTERSYNC_ROSTERS:-../examples}:/srv/rosters"
    for name in SERVICES | {"cli"}:
        assert rosters in services[name]["volumes"], name
        assert (
            services[name]["environment"]["ROSTERSYNC_TENANTS_FILE"] == "/srv/rosters/tenants.toml"
        )
    assert (DEPLOY.parent / "examples" / "tenants.toml").is_file()  # the default's tenants file
