"""deploy/Dockerfile read as data, and its build stages carried out without Docker.

Only what the Dockerfile uses is understood: stages (``FROM base AS name``), ``ENV``,
``WORKDIR``, ``COPY`` (sources from the build context, or ``--from`` another stage), ``RUN``,
``USER``, ``HEALTHCHECK``, ``CMD`` and ``ENTRYPOINT``. ``build`` runs a stage's chain in a folder
standing for the image's root: COPY copies from the repository (leaving out what
.dockerignore-like caches are), RUN runs in bash with the stage's ENV, paths remapped under that
folder. ``RUN --mount`` flags are dropped (a cache mount changes no result).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    flags: dict[str, str] = field(default_factory=dict)

    def words(self) -> list[str]:
        """The arguments, as JSON (exec form) or split like a shell would."""
        text = self.args.strip()
        head, _, rest = text.partition(" ")
        if head == "CMD" and rest.lstrip().startswith("["):  # HEALTHCHECK CMD [...]
            return ["CMD", *json.loads(rest)]
        if text.startswith("["):
            words: list[str] = json.loads(text)
            return words
        return shlex.split(text)

    def env(self) -> dict[str, str]:
        return dict(word.split("=", 1) for word in self.words())


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "a continued line ends the file"
    return lines


def parse(text: str | None = None) -> dict[str, Stage]:
    """The stages by name, in order."""
    text = DOCKERFILE.read_text() if text is None else text
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        while (found := re.match(r"--([a-z-]+)=(\S+)\s+", rest)) is not None:
            flags[found[1]] = found[2]
            rest = rest[found.end() :]
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            current = Stage(name.strip() or base.strip(), base.strip(), [])
            stages[current.name] = current
        elif keyword == "ARG" and current is None:
            continue  # a global build argument (the base image)
        else:
            assert current is not None, f"{keyword} before any FROM"
            current.instructions.append(Instruction(keyword, rest, flags))
    return stages


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built on, the first first."""
    found = [stages[name]]
    while found[0].base in stages:
        found.insert(0, stages[found[0].base])
    return found


def final_setting(stages: dict[str, Stage], name: str, keyword: str) -> Instruction | None:
    """The last ``keyword`` (USER, CMD...) along the stage's chain: what the image keeps."""
    found = None
    for stage in chain(stages, name):
        for instruction in stage.all(keyword):
            found = instruction
    return found


def build(stages: dict[str, Stage], name: str, root: Path, env: dict[str, str]) -> None:
    """Carry out the stage's chain with ``root`` as the image's ``/``; ``env`` overrides ENV."""
    cwd = root
    stage_env: dict[str, str] = {}

    def inside(path: str) -> Path:
        return root / path.lstrip("/") if path.startswith("/") else cwd / path

    for stage in chain(stages, name):
        for instruction in stage.instructions:
            words = instruction.words() if instruction.keyword != "RUN" else []
            if instruction.keyword == "WORKDIR":
                cwd = inside(words[0])
                cwd.mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "ENV":
                for key, value in instruction.env().items():
                    stage_env[key] = str(inside(value)) if value.startswith("/") else value
            elif instruction.keyword == "COPY" and "from" not in instruction.flags:
                *sources, destination = words
                for source in sources:
                    _copy(ROOT / source, inside(destination), destination.endswith("/"))
            elif instruction.keyword == "RUN":
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", instruction.args],
                    cwd=cwd, env={**os.environ, **stage_env, **env}, capture_output=True, text=True,
                )  # fmt: skip
                assert done.returncode == 0, f"{stage.name}: RUN {instruction.args}\n{done.stderr}"


def _copy(source: Path, destination: Path, into: bool) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, ignore=IGNORED, dirs_exist_ok=True)
        return
    target = destination / source.name if into else destination
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
