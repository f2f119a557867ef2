"""The Helm chart (deploy/helm/rostersync): ``helm lint`` and ``helm template`` when Helm is
installed (``scripts/install-helm`` builds it into .tools/bin), and the rendered manifests'
structure: a Deployment per service with probes on /healthz and /readyz and resource requests,
settings from a ConfigMap and a Secret, the API's Service, the optional ServiceMonitor.

Without Helm, the chart's own files are checked: the values every template names exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "rostersync"
SERVICES = ("fetcher", "validator", "mapper", "writer")


def helm() -> str | None:
    local = ROOT / ".tools" / "bin" / "helm"
    return str(local) if local.exists() else shutil.which("helm")


def render(binary: str, *options: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [binary, "template", "release", str(CHART), *options],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


@pytest.fixture
def binary() -> str:
    found = helm()
    if found is None:
        pytest.skip("Helm is not installed (scripts/install-helm): see the values check below")
    return found


def test_helm_lint_passes(binary: str) -> None:
    result = subprocess.run([binary, "lint", str(CHART)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_rendered_deployments_have_probes_resources_and_settings(binary: str) -> None:
    documents = render(binary)
    deployments = by_kind(documents, "Deployment")
    assert set(deployments) == {f"release-rostersync-{s}" for s in (*SERVICES, "api")}
    config = by_kind(documents, "ConfigMap")["release-rostersync-settings"]["data"]
    assert config["ROSTERSYNC_METRICS_PORT"] == "9100"
    assert config["ROSTERSYNC_METRICS_HOST"] == "0.0.0.0"
    assert config["ROSTERSYNC_TENANTS_FILE"] == "/etc/rostersync/tenants.toml"
    for service in SERVICES:
        pod = deployments[f"release-rostersync-{service}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == [f"rostersync-{service}"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {
            "configMapRef": "release-rostersync-settings",
            "secretRef": "release-rostersync-secrets",
        }
        assert pod["securityContext"]["runAsNonRoot"] is True
    services = by_kind(documents, "Service")
    assert services["release-rostersync-api"]["spec"]["ports"][0]["port"] == 8470
    assert "ServiceMonitor" not in {d["kind"] for d in documents}


def test_optional_service_monitor_and_an_existing_secret(binary: str) -> None:
    documents = render(
        binary,
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "secrets.existingSecret=platform-made",
        "--set", "api.enabled=false",
    )  # fmt: skip
    (monitor,) = by_kind(documents, "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert "Secret" not in {d["kind"] for d in documents}
    writer = by_kind(documents, "Deployment")["release-rostersync-writer"]
    (container,) = writer["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "platform-made"}} in container["envFrom"]
    assert "release-rostersync-api" not in by_kind(documents, "Deployment")


def test_every_value_a_template_names_is_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"]) == ("v2", "rostersync")
    named = set()
    for template in (CHART / "templates").iterdir():
        named |= set(re.findall(r"\.Values((?:\.[A-Za-z]\w*)+)", template.read_text()))
    assert len(named) > 10
    for path in sorted(named):
        node: Any = values
        for key in path.strip(".").split("."):
            assert isinstance(node, dict), f".Values{path}: {key} is under a value"
            assert key in node, f".Values{path} is not in values.yaml"
            node = node[key]
    assert set(values["services"]) == set(SERVICES)


def containers_images(documents: list[dict[str, Any]]) -> dict[str, str]:
    images = {}
    for name, deployment in by_kind(documents, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        images[name.removeprefix("release-rostersync-")] = container["image"]
    return images


def test_each_deployment_runs_its_own_image(binary: str) -> None:
    from tests.dockerfile import parse

    images = containers_images(render(binary))
    assert images == {s: f"rostersync-{s}:0.1.0" for s in (*SERVICES, "api")}
    assert set(images) <= set(parse())  # each is a target of deploy/Dockerfile
    moved = containers_images(render(
        binary,
        "--set", "image.repository=registry.example/rs", "--set", "image.tag=2",
        "--set", "services.mapper.image.tag=2.1",
        "--set", "api.image.repository=registry.example/admin",
    ))  # fmt: skip
    assert moved == {
        "fetcher": "registry.example/rs-fetcher:2",
        "validator": "registry.example/rs-validator:2",
        "mapper": "registry.example/rs-mapper:2.1",
        "writer": "registry.example/rs-writer:2",
        "api": "registry.example/admin:2",
    }
