"""A tenant's drop folder, watched: each complete bundle dropped in it is synced exactly once.

Layout of an inbox folder::

    <inbox>/                 bundles arrive here (a .zip, or a folder holding manifest.csv)
    <inbox>/.processing/     claimed: <run id>__<name> (renamed atomically, so taken once)
    <inbox>/processed/       done: <time>_<name>, with <time>_<name>.report.json beside it
    <inbox>/failed/          could not be read at all, with the report saying why

A bundle is complete when nothing in it has changed for ``settle_seconds`` and, for a zip, its
central directory is readable (it is written last). Names an SFTP client uses while uploading
(``.part``, ``.tmp``, ``.filepart``, dot-files) are never taken, nor symbolic links. A claim left
in .processing/ by a fetcher that stopped is resumed under the same run id, so a restart never
makes a second run; each run started on a claim is counted (``.processing/.attempts/``), and one
started more than ``max_claim_attempts`` times (the fetcher keeps dying on it) fails at once, so
the bundle goes to failed/ instead of taking the fetcher down again.

An inbox outside the fetcher's ``source_roots`` (or in a system folder) is refused: logged once,
never listed.
"""

from __future__ import annotations

import contextlib
import os
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from rostersync_libs.runs import RunEvent, RunPhase

from rostersync_fetcher.csv.roots import refusal, refuse_once, service_roots

PROCESSING = ".processing"
ATTEMPTS = ".attempts"  # in .processing/: runs started on each claim
PROCESSED = "processed"
FAILED = "failed"
UPLOADING_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".uploading", ".crdownload")


@dataclass(frozen=True)
class Claim:
    run_id: UUID
    path: Path  # inside .processing/

    @property
    def name(self) -> str:
        return self.path.name.split("__", 1)[1]


def _uploading(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(UPLOADING_SUFFIXES)


def _newest_change(path: Path) -> tuple[float, bool]:
    """The latest mtime below ``path`` and whether any file in it is still being uploaded."""
    if path.is_file():
        return path.stat().st_mtime, False
    newest, uploading = path.stat().st_mtime, False
    for root, _, files in os.walk(path):
        for name in files:
            uploading = uploading or _uploading(name)
            # lstat: a link (even a dangling one) is the bundle's problem, not the scan's.
            newest = max(newest, (Path(root) / name).lstat().st_mtime)
    return newest, uploading


def _has_manifest(folder: Path) -> bool:
    return (folder / "manifest.csv").is_file() or any(
        (child / "manifest.csv").is_file() for child in folder.iterdir() if child.is_dir()
    )


def refused(inbox: Path, roots: Sequence[Path] | None = None) -> bool:
    """Whether the inbox is outside the source roots (said once in the log)."""
    reason = refusal(inbox, service_roots() if roots is None else roots)
    if reason is not None:
        refuse_once(inbox, f"inbox refused: {reason}")
    return reason is not None


def ready_bundles(
    inbox: Path,
    settle_seconds: float,
    now: float | None = None,
    *,
    roots: Sequence[Path] | None = None,
) -> list[Path]:
    """Bundles in the inbox that are complete, oldest first (none in a refused inbox)."""
    if refused(inbox, roots):
        return []
    now = time.time() if now is None else now
    ready: list[tuple[float, Path]] = []
    for entry in inbox.iterdir():
        if _uploading(entry.name) or entry.name in (PROCESSED, FAILED):
            continue
        if entry.is_symlink():
            refuse_once(entry, f"inbox {inbox}: {entry.name} is a symbolic link; not taken")
            continue
        newest, uploading = _newest_change(entry)
        if uploading or now - newest < settle_seconds:
            continue
        if (entry.is_file() and entry.suffix.lower() == ".zip" and zipfile.is_zipfile(entry)) or (
            entry.is_dir() and _has_manifest(entry)
        ):
            ready.append((newest, entry))
    return [path for _, path in sorted(ready)]


def claim(inbox: Path, bundle: Path, run_id: UUID) -> Claim:
    """Take a bundle out of the drop area (an atomic rename: no other fetcher can take it too)."""
    processing = inbox / PROCESSING
    processing.mkdir(exist_ok=True)
    target = processing / f"{run_id}__{bundle.name}"
    bundle.rename(target)
    return Claim(run_id, target)


def pending_claims(inbox: Path, *, roots: Sequence[Path] | None = None) -> list[Claim]:
    """Claims a stopped fetcher left unfinished, to resume under their run ids."""
    processing = inbox / PROCESSING
    if not processing.is_dir() or refused(inbox, roots):
        return []
    claims = []
    for entry in sorted(processing.iterdir()):
        run, sep, _ = entry.name.partition("__")
        if sep:
            try:
                claims.append(Claim(UUID(run), entry))
            except ValueError:
                continue
    return claims


def note_attempt(path: Path) -> int | None:
    """For a claimed bundle (a path in .processing/): one more run started on it, and how many
    have been in all, this one included. None for any other path."""
    if path.parent.name != PROCESSING:
        return None
    counters = path.parent / ATTEMPTS
    counters.mkdir(exist_ok=True)
    counter = counters / path.name
    try:
        count = int(counter.read_text(encoding="utf-8").strip() or 0)
    except (OSError, ValueError):
        count = 0
    count += 1
    try:
        counter.write_text(f"{count}\n", encoding="utf-8")
    except FileNotFoundError:  # the folder was just removed by finish(): once more
        counters.mkdir(exist_ok=True)
        counter.write_text(f"{count}\n", encoding="utf-8")
    return count


def finish(inbox: Path, claimed: Claim, outcome: RunEvent) -> Path:
    """Move the bundle to processed/ or failed/ and write its report beside it."""
    folder = inbox / (FAILED if outcome.phase is RunPhase.FAILED else PROCESSED)
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{stamp}_{claimed.name}"
    claimed.path.rename(target)
    report = target.with_name(target.name + ".report.json")
    report.write_text(outcome.model_dump_json(indent=2) + "\n", encoding="utf-8")
    counters = inbox / PROCESSING / ATTEMPTS
    (counters / claimed.path.name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # .processing/ is left as it was: empty when done
        counters.rmdir()
    return target
