from __future__ import annotations

import os
import zipfile
from pathlib import Path
from uuid import uuid4

from rostersync_fetcher.csv import inbox_folder as inbox
from rostersync_libs.runs import RunEvent, RunPhase


def _age(path: Path, seconds: float) -> None:
    past = path.stat().st_mtime - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (past, past))


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.csv", "propertyName,value\n")
    return path


def test_only_complete_settled_bundles_are_ready(tmp_path: Path) -> None:
    done = _zip(tmp_path / "monday.zip")
    _age(done, 60)
    fresh = _zip(tmp_path / "tuesday.zip")  # still being written, as far as we can tell
    uploading = _zip(tmp_path / "wednesday.zip.part")
    _age(uploading, 60)
    truncated = tmp_path / "thursday.zip"
    truncated.write_bytes(done.read_bytes()[:30])  # no central directory yet
    _age(truncated, 60)
    folder = tmp_path / "friday"
    folder.mkdir()
    (folder / "manifest.csv").write_text("propertyName,value\n")
    (folder / "users.csv.filepart").write_text("sourcedId\n")
    _age(folder, 60)
    assert inbox.ready_bundles(tmp_path, settle_seconds=10) == [done]
    assert fresh.exists()


def test_a_claim_is_taken_once_resumed_after_a_restart_and_finished_with_its_report(
    tmp_path: Path,
) -> None:
    bundle = _zip(tmp_path / "monday.zip")
    _age(bundle, 60)
    run_id = uuid4()
    claimed = inbox.claim(tmp_path, bundle, run_id)
    assert inbox.ready_bundles(tmp_path, settle_seconds=10) == []  # not taken twice
    assert inbox.pending_claims(tmp_path) == [claimed]  # what a restarted fetcher resumes
    assert claimed.name == "monday.zip"
    outcome = RunEvent(tenant="t", run_id=run_id, source="sftp", phase=RunPhase.FETCHED,
                       file_counts={"users.csv": 3})  # fmt: skip
    final = inbox.finish(tmp_path, claimed, outcome)
    assert final.parent.name == "processed"
    assert final.name.endswith("_monday.zip")
    report = final.with_name(final.name + ".report.json").read_text()
    assert '"users.csv": 3' in report
    assert inbox.pending_claims(tmp_path) == []


def test_an_unreadable_bundle_goes_to_failed(tmp_path: Path) -> None:
    bundle = _zip(tmp_path / "bad.zip")
    claimed = inbox.claim(tmp_path, bundle, uuid4())
    outcome = RunEvent(tenant="t", run_id=claimed.run_id, source="sftp", phase=RunPhase.FAILED,
                       reason="no manifest.csv")  # fmt: skip
    assert inbox.finish(tmp_path, claimed, outcome).parent.name == "failed"
