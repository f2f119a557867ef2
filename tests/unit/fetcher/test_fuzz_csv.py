"""Malformed CSV never crashes the fetcher or the validator, and every record is accounted for."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rostersync_fetcher.csv.run import CsvRun
from rostersync_libs.events import (
    EntityType,
    FileEvent,
    FileFacts,
    Origin,
    RecordEvent,
    RunEnd,
    record_event,
)
from rostersync_libs.oneroster.bundle import Bundle, BundleError
from rostersync_libs.oneroster.columns import USERS_1_1
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import CsvSource, Tenant
from rostersync_libs.topics import Topics
from rostersync_validator.handler import ValidatorHandler

from benchmarks import fuzz_bundles
from tests.fakes import FakeKnown, RecordingProducer

HEADER = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
)
MANIFEST = "propertyName,value\noneroster.version,{version}\nfile.users,{mode}\nfile.orgs,absent\n"

cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["true", "TRUE", "", "student", "2026-01-02", '"', '""', "a,b", "\x00", "\r\n"]
    ),
)
rows = st.lists(st.lists(cells, max_size=22), max_size=12)
raw_tail = st.binary(max_size=200)


async def _run(bundle: Path) -> tuple[RunEvent, RecordingProducer]:
    producer = RecordingProducer()
    tenant = Tenant(id="t", name="T", sources=[CsvSource(id="csv", path=bundle)])
    run = CsvRun(
        producer=cast(Any, producer),
        topics=Topics(),
        tenant=tenant,
        source=tenant.sources[0],  # type: ignore[arg-type]
        run_id=uuid4(),
    )
    return await run.run(), producer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=rows,
    tail=raw_tail,
    version=st.sampled_from(["1.1", "1.2", "9.9", ""]),
    mode=st.sampled_from(["bulk", "delta", "BULK", "nonsense"]),
)
async def test_malformed_users_csv_never_crashes_fetcher_or_validator(
    body: list[list[str]], tail: bytes, version: str, mode: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder)
        (bundle / "manifest.csv").write_text(MANIFEST.format(version=version, mode=mode))
        text = HEADER + "".join(",".join(cell for cell in row) + "\n" for row in body)
        (bundle / "users.csv").write_bytes(text.encode("utf-8", "surrogatepass") + tail)
        outcome, producer = await _run(bundle)

    assert outcome.phase in (RunPhase.FETCHED, RunPhase.FAILED)
    events = producer.events(Topics().fetched)
    records = [e for e in events if isinstance(e, RecordEvent)]
    if outcome.phase is RunPhase.FETCHED:
        assert sum(outcome.file_counts.values()) == len(records)
        assert sum(1 for e in events if isinstance(e, RunEnd)) == 3  # one per partition
    handler = ValidatorHandler(FakeKnown())
    for event in events:
        if isinstance(event, FileEvent):
            handler.on_file(event, 0)
    outcomes = await handler.handle(records)
    for event, result in zip(records, outcomes, strict=True):
        # a record goes on, or is rejected with at least one reason: never silently dropped
        assert result.forward is not None or result.findings, event


def _damaged_zip(path: Path, method: int) -> Path:
    """A bundle zip whose users.csv member's compressed bytes are inverted after the first four
    (an lzma member's header, so its decoder starts and fails on the properties)."""
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("manifest.csv", MANIFEST.format(version="1.1", mode="bulk"))
        archive.writestr("users.csv", HEADER + "u1,,,true,o1,student,sam,,Sam,Smith\n" * 50)
        info = archive.getinfo("users.csv")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for at in range(start + 4, start + info.compress_size):
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED])
async def test_a_damaged_zip_member_fails_the_run_with_its_reason(
    tmp_path: Path, method: int
) -> None:
    """Found by benchmarks/fuzz_bundles.py: lzma's LZMAError (and bzip2's bare OSError) escaped
    the bundle reader and failed the run through the fetcher's catch-all."""
    bundle = _damaged_zip(tmp_path / "bundle.zip", method)
    with pytest.raises(BundleError, match=r"users\.csv: the zip is damaged"):
        Bundle(bundle).encoding("users.csv")
    outcome, _ = await _run(bundle)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason is not None
    assert outcome.reason.startswith("users.csv: the zip is damaged"), outcome.reason


@pytest.mark.parametrize("container", ["folder", "zip"])
@pytest.mark.parametrize("manifest", ["Manifest.csv", "manifest.CSV"])
async def test_a_manifest_named_in_another_case_is_read(
    tmp_path: Path, container: str, manifest: str
) -> None:
    """Found by benchmarks/fuzz_bundles.py: the manifest was found in any case but opened as
    manifest.csv (a zip: KeyError through the fetcher's catch-all; a folder: no such file)."""
    files = {
        manifest: MANIFEST.format(version="1.1", mode="bulk"),
        "users.csv": HEADER + "u1,,,true,o1,student,sam,,Sam,Smith\n",
    }
    if container == "zip":
        bundle = tmp_path / "bundle.zip"
        with zipfile.ZipFile(bundle, "w") as archive:
            for name, text in files.items():
                archive.writestr(name, text)
    else:
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        for name, text in files.items():
            (bundle / name).write_text(text)
    outcome, _ = await _run(bundle)
    assert outcome.phase is RunPhase.FETCHED, outcome.reason
    assert outcome.file_counts == {"users.csv": 1}
    assert manifest not in outcome.skipped_files  # it is the manifest, not an unknown file


def test_manifest_csv_itself_is_read_before_one_in_another_case(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("MANIFEST.CSV", "propertyName,value\noneroster.version,9.9\n")
        archive.writestr("manifest.csv", "propertyName,value\noneroster.version,1.2\n")
    opened = Bundle(bundle)
    assert opened.manifest_name == "manifest.csv"
    assert opened.manifest()["oneroster.version"] == "1.2"


async def test_the_validator_keeps_the_codes_of_a_files_errors_not_their_texts() -> None:
    """Found by benchmarks/fuzz_bundles.py (RSS growth): the handler kept each file's error
    findings whole for its 10,000 most recent files, and a finding's text can be as long as the
    header it names (here 2 MB per file)."""
    long_names = [f"col{i}-" + "x" * 10_000 for i in range(200)]
    facts = FileFacts(file="users.csv", entity=EntityType.USER, mode="bulk",
                      header=[*USERS_1_1.names, *long_names], profile="strict")  # fmt: skip
    run_id = uuid4()
    marker = FileEvent(tenant="t", source="csv", run_id=run_id, facts=facts)
    handler = ValidatorHandler(FakeKnown())
    found = handler.on_file(marker, 0)
    assert sum(len(f.message) for f in found) > 2_000_000
    assert len(repr(handler._files)) < 1_000
    record = record_event(
        tenant="t", source="csv", run_id=run_id, entity=EntityType.USER, sourced_id="u1",
        payload={"sourcedId": "u1", "enabledUser": "true", "orgSourcedIds": ["o1"],
                 "role": "student", "username": "s", "givenName": "S", "familyName": "F"},
        origin=Origin(file="users.csv", row=2), oneroster_version="1.1", mode="bulk",
    )  # fmt: skip
    (outcome,) = await handler.handle([record])
    assert outcome.forward is None
    rejected = [f for f in outcome.findings if f.code == "file_rejected"]
    assert len(rejected) == 1
    assert rejected[0].message.endswith("file-level errors (unknown_column)")


def test_mutated_bundles_through_fetcher_and_validator_a_quick_round(tmp_path: Path) -> None:
    """The fuzz harness itself (benchmarks/fuzz_bundles.py, run with 10,000 examples for the
    figures in docs/reliability.md), a few examples: no crash, every record accounted for."""
    tally = fuzz_bundles.run(120, 0, tmp_path / "problems")
    assert tally.examples == 120
    assert [(p.kind, p.signature) for p in tally.problems] == []
    assert tally.records == tally.forwarded + tally.rejected


async def test_a_zip_whose_offsets_point_before_its_start_fails_with_the_member_named(
    tmp_path: Path,
) -> None:
    """Found by benchmarks/fuzz_bundles.py: the central directory's offset made too large puts
    every member before the file's start; the seek's OSError failed the run with a bare
    '[Errno 22] Invalid argument'."""
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("manifest.csv", MANIFEST.format(version="1.1", mode="bulk"))
        archive.writestr("users.csv", HEADER)
    data = bytearray(bundle.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    offset = int.from_bytes(data[end + 16 : end + 20], "little")
    data[end + 16 : end + 20] = (offset + 1000).to_bytes(4, "little")
    bundle.write_bytes(bytes(data))
    outcome, _ = await _run(bundle)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == (
        "bundle.zip: manifest.csv cannot be unpacked ([Errno 22] Invalid argument)"
    )


async def test_a_zip_entry_of_a_later_zip_version_fails_the_run_with_its_reason(
    tmp_path: Path,
) -> None:
    """Found by benchmarks/fuzz_bundles.py: zipfile refuses an entry needing a zip version it
    does not read with NotImplementedError, which went through the fetcher's catch-all."""
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("manifest.csv", MANIFEST.format(version="1.1", mode="bulk"))
    data = bytearray(bundle.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6 : central + 8] = (187).to_bytes(2, "little")  # version needed: 18.7
    bundle.write_bytes(bytes(data))
    outcome, _ = await _run(bundle)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == "bundle.zip: not a readable zip file (zip file version 18.7)"
