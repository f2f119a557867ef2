"""deploy/compose.yaml and deploy/Dockerfile as written (no Docker engine here to run them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).parents[3] / "deploy"
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


def test_the_tenants_file_and_the_rosters_are_one_host_folder_in_every_service() -> None:
    services = compose()["services"]
    rosters = "${ROSTERSYNC_ROSTERS:-../examples}:/srv/rosters"
    for name in SERVICES | {"cli"}:
        assert rosters in services[name]["volumes"], name
        assert (
            services[name]["environment"]["ROSTERSYNC_TENANTS_FILE"] == "/srv/rosters/tenants.toml"
        )
    assert (DEPLOY.parent / "examples" / "tenants.toml").is_file()  # the default's tenants file


def test_each_service_is_built_from_its_own_target_as_its_own_image() -> None:
    from tests.dockerfile import parse

    services = compose()["services"]
    targets = parse()
    images = set()
    for name in SERVICES | {"cli"}:
        build = services[name]["build"]
        assert build == {"context": "..", "dockerfile": "deploy/Dockerfile", "target": name}
        assert name in targets, name  # a target the Dockerfile has
        assert services[name]["image"] == f"rostersync-{name}:${{ROSTERSYNC_TAG:-0.1.0}}"
        images.add(services[name]["image"])
        assert "command" not in services[name]  # the image's own CMD starts the service
    assert len(images) == len(SERVICES) + 1
    assert (DEPLOY / build["context"] / "uv.lock").is_file()  # the context is the repository


def test_only_the_four_stage_containers_take_the_metrics_port() -> None:
    # `rostersync serve` in the cli container starts four services in one network namespace:
    # a shared ROSTERSYNC_METRICS_PORT would make three of them fail to bind.
    services = compose()["services"]
    for name in ("fetcher", "validator", "mapper", "writer"):
        assert services[name]["environment"]["ROSTERSYNC_METRICS_PORT"] == "9400", name
    for name in ("cli", "api"):
        assert "ROSTERSYNC_METRICS_PORT" not in services[name]["environment"], name
