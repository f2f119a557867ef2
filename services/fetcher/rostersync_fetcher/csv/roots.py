"""Where a file source may be on disk.

The fetcher reads csv and inbox sources only inside its ``source_roots`` setting (when set), and
never in a system folder (``/proc``, ``/etc``, ``/usr``…, or ``/`` itself).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rostersync_fetcher.settings import FetcherSettings

log = logging.getLogger(__name__)

# Never a roster source, whatever ``source_roots`` says is allowed when it is not set.
SYSTEM_FOLDERS = tuple(
    Path(p)
    for p in ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32",
              "/lib64", "/boot", "/run")
)  # fmt: skip


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def refusal(path: Path, roots: Sequence[Path]) -> str | None:
    """Why the fetcher must not read a source at ``path`` (None: it may).

    With ``roots``, the path (symbolic links resolved) must be inside one of them; without,
    it must not be ``/`` or inside a system folder.
    """
    try:
        resolved = path.resolve()
        allowed = [r.resolve() for r in roots]
    except (OSError, RuntimeError) as exc:  # a loop of links, a folder we may not enter…
        return f"source path {path} cannot be resolved ({exc}); not read"
    if roots:
        if not any(inside(resolved, r) for r in allowed):
            listed = ", ".join(str(r) for r in allowed)
            return f"source path {path} is outside the fetcher's source_roots ({listed}); not read"
        return None
    if resolved == Path("/") or any(inside(resolved, folder) for folder in SYSTEM_FOLDERS):
        return (
            f"source path {path} is a system folder (or inside one); not read"
            " (configure the fetcher's source_roots)"
        )
    return None


def service_roots() -> list[Path]:
    """The fetcher's ``source_roots`` setting, as its environment says."""
    return list(FetcherSettings().source_roots)


_told: set[tuple[Path, str]] = set()


def refuse_once(path: Path, reason: str) -> None:
    """Log a refused source once per process (inboxes are scanned every few seconds)."""
    if (path, reason) not in _told:
        _told.add((path, reason))
        log.error("%s", reason)
