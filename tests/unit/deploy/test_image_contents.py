"""What each image of deploy/Dockerfile holds, without Docker: each target's build stages are
carried out as written (tests/dockerfile.py: its COPY lines copy the same files, its RUN lines
run the same ``uv sync`` commands, offline from uv's cache) into a fresh virtual environment,
then that environment is examined: the service's entry point loads, every module of its packages
imports with only what was installed, and the other services' packages are not there.

Needs uv (``scripts/setup`` installs it) and its cache filled by ``scripts/setup`` (the same
lockfile); no servers, no network. What still needs a Docker engine: the base images, the
``useradd``, file ownership, and the HEALTHCHECK run inside a container (docs/operations.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.dockerfile import ROOT, build, parse

PACKAGES = {
    "fetcher": "rostersync_fetcher",
    "validator": "rostersync_validator",
    "mapper": "rostersync_mapper",
    "writer": "rostersync_writer",
    "api": "rostersync_api",
}

# Run inside the image's environment: the installed rostersync distributions, whether each
# service package can be found, and every module of the named packages imported.
PROBE = """
import importlib, importlib.metadata as md, importlib.util, json, pkgutil, sys
names = sorted(d.metadata["Name"] for d in md.distributions()
               if d.metadata["Name"].startswith("rostersync"))
found = {p: importlib.util.find_spec(p) is not None for p in json.loads(sys.argv[1])}
failed = {}
for package in json.loads(sys.argv[2]):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
scripts = {e.name: e.load().__module__ for e in md.entry_points(group="console_scripts")
           if e.name.startswith("rostersync")}
print(json.dumps({"names": names, "found": found, "failed": failed, "scripts": scripts}))
"""


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (scripts/setup installs it)")
    return found


def declared_workspace_dependencies(service: str) -> set[str]:
    """The service's own distribution and the workspace members its pyproject.toml names."""
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    members = set(project["tool"]["uv"]["sources"])
    return {f"rostersync-{service}"} | {
        d for d in project["project"]["dependencies"] if d in members
    }


def image_environment(target: str, tmp: Path) -> Path:
    """The target's build stages carried out under ``tmp``; its /app/.venv."""
    stages = parse()
    (copy,) = [c for c in stages[target].all("COPY") if c.flags.get("from") == f"{target}-build"]
    assert copy.words() == ["/app/.venv", "/app/.venv"]
    uv()
    build(stages, f"{target}-build", tmp, {
        "UV_OFFLINE": "1",  # from the cache scripts/setup filled: the same locked versions
        "UV_COMPILE_BYTECODE": "0",  # what is installed is the same; quicker
    })  # fmt: skip
    venv = tmp / "app" / ".venv"
    assert (venv / "bin" / "python").exists()
    # installed, not linked to the copied sources (the image keeps only /app/.venv)
    for pth in venv.glob("lib/python*/site-packages/*.pth"):
        assert str(tmp / "src") not in pth.read_text(), pth.name
    return venv


def probe(venv: Path, packages: list[str], tmp: Path) -> dict[str, object]:
    # -I: neither the working folder nor PYTHONPATH nor user site-packages count
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", PROBE,
         json.dumps(sorted(PACKAGES.values())), json.dumps(packages)],
        cwd=tmp, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", sorted(PACKAGES))
def test_a_service_image_holds_its_package_libs_and_nothing_of_the_others(
    service: str, tmp_path: Path
) -> None:
    venv = image_environment(service, tmp_path)
    distributions = declared_workspace_dependencies(service) | {"rostersync-libs"}
    own = sorted(d.replace("-", "_") for d in distributions)
    found = probe(venv, own, tmp_path)
    assert found["names"] == sorted(distributions)
    assert found["failed"] == {}  # every module imports with only what the image has
    # the service's entry point loads (the api's image also has the two services it declares)
    services = declared_workspace_dependencies(service) - {"rostersync-libs"}
    scripts = {d: d.replace("-", "_") + ".__main__" for d in services}
    assert found["scripts"] == scripts
    assert f"rostersync-{service}" in scripts
    expected = {package: package in own for package in PACKAGES.values()}
    assert found["found"] == expected
    assert found["found"][PACKAGES[service]] is True
    assert sum(expected.values()) < len(PACKAGES)  # some service is always left out
    assert (venv / "bin" / f"rostersync-{service}").exists()
    assert not (venv / "bin" / "rostersync").exists()  # no CLI in a service's image


@pytest.mark.timeout(120)
def test_the_cli_image_runs_the_command_and_holds_every_service(tmp_path: Path) -> None:
    venv = image_environment("cli", tmp_path)
    found = probe(venv, ["rostersync_cli"], tmp_path)
    assert found["failed"] == {}
    assert all(found["found"].values())  # type: ignore[attr-defined]  # `rostersync serve`
    assert "rostersync-localstack" in found["names"]  # type: ignore[operator]
    done = subprocess.run(
        [str(venv / "bin" / "rostersync"), "--help"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage: rostersync" in done.stdout
