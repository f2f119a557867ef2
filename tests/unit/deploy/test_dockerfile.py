"""deploy/Dockerfile as written: one target per service copying only rostersync-libs and that
service (and what its pyproject.toml declares), the locked dependencies installed before the
sources are copied, a non-root user, a HEALTHCHECK that really asks the service's port.
(tests/unit/deploy/test_image_contents.py carries the build stages out.)"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.dockerfile import ROOT, final_setting, parse

SERVICES = ("fetcher", "validator", "mapper", "writer", "api")
TARGETS = (*SERVICES, "cli")


def workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return members


def member_dirs(service: str) -> set[str]:
    """``libs/``, ``services/<service>/`` and the members its pyproject.toml depends on."""
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    names = set(project["tool"]["uv"]["sources"]) & set(project["project"]["dependencies"])
    dirs = {f"services/{service}/"}
    for name in names:
        short = name.removeprefix("rostersync-")
        dirs.add("libs/" if short == "libs" else f"services/{short}/")
    return dirs


def source_copies(stage_name: str) -> list[str]:
    stage = parse()[stage_name]
    return [c.words()[0] for c in stage.all("COPY") if "from" not in c.flags]


def test_every_target_is_its_build_stages_venv_on_the_runtime_base() -> None:
    stages = parse()
    for target in TARGETS:
        stage = stages[target]
        assert stage.base == "runtime", target
        (copy,) = stage.all("COPY")  # nothing else reaches the image: no sources, no uv
        assert copy.flags == {"from": f"{target}-build"}, target
        assert copy.words() == ["/app/.venv", "/app/.venv"]
        assert stages[f"{target}-build"].base == "workspace"
    assert not stages["runtime"].all("COPY")
    # the image a plain `docker build` makes (the last stage): the CLI, as before
    assert list(stages)[-1] == "cli"


def test_a_service_target_copies_only_libs_and_its_own_package() -> None:
    for service in SERVICES:
        copies = source_copies(f"{service}-build")
        assert set(copies) == member_dirs(service) | {"libs/"}, service
        assert len(copies) == len(set(copies))
    assert member_dirs("validator") == {"libs/", "services/validator/"}
    # the API declares the writer (migrations) and the fetcher (a source's test): they come along
    assert member_dirs("api") == {"libs/", "services/api/", "services/fetcher/", "services/writer/"}


def test_dependencies_are_installed_from_the_lockfile_before_the_sources_are_copied() -> None:
    stages = parse()
    manifests = {"pyproject.toml", "uv.lock"} | {f"{m}/pyproject.toml" for m in workspace_members()}
    copied = set()
    for copy in stages["workspace"].all("COPY"):
        if "from" not in copy.flags:
            copied |= set(copy.words()[:-1])
    assert copied == manifests  # only manifests: the layer below changes with them alone
    for target in TARGETS:
        build = stages[f"{target}-build"].instructions
        package = "rostersync" if target == "cli" else f"rostersync-{target}"
        first, last = build[0], build[-1]
        assert first.keyword == last.keyword == "RUN", target
        for run in (first, last):
            words = run.words()
            assert words[:2] == ["uv", "sync"], target
            assert {"--frozen", "--no-dev"} <= set(words), target
            assert words[words.index("--package") + 1] == package, target
        assert "--no-install-workspace" in first.words()  # the cached dependency layer
        assert "--no-editable" in last.words()  # installed: the image keeps no source tree
        assert all(i.keyword == "COPY" for i in build[1:-1]), target


def test_every_image_runs_as_an_unprivileged_user_owning_the_upload_folder() -> None:
    stages = parse()
    for target in TARGETS:
        user = final_setting(stages, target, "USER")
        assert user is not None, target
        assert user.args == "10001", target
    (useradd,) = stages["runtime"].all("RUN")
    assert "useradd --uid 10001" in useradd.args
    assert "chown -R 10001 /var/lib/rostersync" in useradd.args
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    upload_dir = compose["services"]["api"]["environment"]["ROSTERSYNC_UPLOAD_DIR"]
    assert upload_dir.startswith("/var/lib/rostersync/")
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "rostersync" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001


def test_each_service_image_starts_its_service() -> None:
    stages = parse()
    for service in SERVICES:
        cmd = final_setting(stages, service, "CMD")
        assert cmd is not None
        assert cmd.words() == [f"rostersync-{service}"]
        assert final_setting(stages, service, "ENTRYPOINT") is None
    entrypoint = final_setting(stages, "cli", "ENTRYPOINT")
    assert entrypoint is not None
    assert entrypoint.words() == ["rostersync"]
    assert final_setting(stages, "cli", "HEALTHCHECK") is None


def test_uv_in_the_image_is_the_version_setup_installs() -> None:
    setup = (ROOT / "scripts" / "setup").read_text()
    version = re.search(r'^UV_VERSION="([\d.]+)"$', setup, re.MULTILINE)
    assert version is not None
    assert parse()["uv"].base == f"ghcr.io/astral-sh/uv:{version[1]}"


class Answer(BaseHTTPRequestHandler):
    status = 200
    asked: list[str] = []  # noqa: RUF012 - shared with the test on purpose

    def do_GET(self) -> None:
        Answer.asked.append(self.path)
        self.send_response(Answer.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def answering() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def healthcheck(service: str, port: int) -> int:
    """The image's HEALTHCHECK command, run here with this Python; its exit code."""
    stages = parse()
    check = final_setting(stages, service, "HEALTHCHECK")
    assert check is not None
    assert check.flags["timeout"] == "5s"
    words = check.words()
    assert words[:3] == ["CMD", "python", "-c"]
    variable = "ROSTERSYNC_API_PORT" if service == "api" else "ROSTERSYNC_METRICS_PORT"
    image_env: dict[str, str] = {}
    for stage_env in ("runtime", service):
        for env in parse()[stage_env].all("ENV"):
            image_env |= env.env()
    assert variable in image_env  # the image sets the port the check asks
    done = subprocess.run(
        [sys.executable, *words[2:]], env={variable: str(port)}, capture_output=True, timeout=20
    )
    return done.returncode


@pytest.mark.parametrize("service", SERVICES)
def test_the_healthcheck_asks_the_services_readiness_on_its_port(service: str) -> None:
    with answering() as port:
        Answer.asked.clear()
        Answer.status = 200
        assert healthcheck(service, port) == 0
        assert Answer.asked == ["/readyz"]
        Answer.status = 503
        assert healthcheck(service, port) != 0
    assert healthcheck(service, port) != 0  # nothing listening


def test_only_the_pipeline_services_serve_health_on_a_fixed_port() -> None:
    # the CLI's `rostersync serve` starts four services in one container: a port set in its
    # image would be taken by the first of them
    stages = parse()

    def env(target: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for stage in ("runtime", target):
            for instruction in stages[stage].all("ENV"):
                found |= instruction.env()
        return found

    for service in ("fetcher", "validator", "mapper", "writer"):
        assert env(service)["ROSTERSYNC_METRICS_PORT"] == "9400"
        assert env(service)["ROSTERSYNC_METRICS_HOST"] == "0.0.0.0"
    assert "ROSTERSYNC_METRICS_PORT" not in env("cli")
    assert "ROSTERSYNC_METRICS_PORT" not in env("api")  # its health is on its HTTP port
    assert env("api")["ROSTERSYNC_API_HOST"] == "0.0.0.0"
