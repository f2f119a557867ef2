"""Small helpers shared by the Kafka and PostgreSQL modules.

Everything here is deliberately PID-based: the stack only ever signals a
process whose PID it recorded itself (and, for Kafka, whose command line still
names our own config file), never a process found by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A failure meant for humans.

    ``message`` is one clear line (what the CLI prints after ``error:``);
    ``details`` is optional supporting text such as the tail of a log file,
    printed after it so the user does not have to go hunting for the log.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.message}\n{self.details}" if self.details else self.message


def is_root() -> bool:
    """True when running as uid 0 (then PostgreSQL must run as the ``postgres`` user)."""
    return os.geteuid() == 0


def pid_alive(pid: int) -> bool:
    """Return True if ``pid`` is a live (non-zombie) process.

    If the process is our own child (``up`` and ``down`` called from one
    long-lived Python process, e.g. a test session) it becomes a zombie after
    exiting and ``kill(pid, 0)`` would still succeed, so reap it first.
    """
    if pid <= 0:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # Not our child: nothing to reap.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Exists, owned by someone else.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Field 3 (after the parenthesised command) is the state letter.
        zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
    if zombie:
        # It may have exited just after the waitpid above: reap it if it is ours.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return not zombie


def read_pid(path: Path) -> int | None:
    """Read a PID file; None if it is missing or garbage."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty if unknown), used to confirm a PID is still ours."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def tail(path: Path, lines: int = 25) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def run(
    cmd: Sequence[str],
    *,
    what: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> str:
    """Run a command to completion; raise StackError with its output on failure."""
    try:
        proc = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: command not found: {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        last = "\n".join(output.splitlines()[-15:])
        raise StackError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}", last)
    return proc.stdout


def which_or_fail(program: str, hint: str) -> str:
    """Absolute path of ``program`` on PATH, or a StackError carrying an install hint."""
    found = shutil.which(program)
    if found is None:
        raise StackError(f"{program} not found on PATH; {hint}")
    return found
