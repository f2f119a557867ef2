"""The fetcher's limits on CSV bundles, each on a small synthetic input with the limit set low:
long lines, wide rows, many rows, zip bombs, bundles too large, symbolic links and special files,
source roots, and claims the fetcher keeps dying on."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import pytest
from rostersync_fetcher.csv import inbox_folder as inbox
from rostersync_fetcher.csv.plan import plan_bundle
from rostersync_fetcher.csv.roots import refusal
from rostersync_fetcher.csv.run import CsvRun
from rostersync_libs.events import EntityType, FileEvent, RecordEvent, RunEnd
from rostersync_libs.findings import Severity
from rostersync_libs.oneroster.bundle import Bundle, BundleError, BundleLimitError
from rostersync_libs.oneroster.cuts import Lines, LineTooLong
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import CsvSource, FileLimits, InboxSource, Tenant, load_tenants
from rostersync_libs.topics import Topics
from rostersync_validator.files import file_findings

from tests.fakes import RecordingProducer

MANIFEST = (
    "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\n"
    "file.orgs,bulk\n"
)
HEADER = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
)
ORGS = (
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\no1,,,School,school,,\n"
)


def user(sid: str, given: str = "Sam") -> str:
    return f"{sid},,,true,o1,student,{sid},,{given},Smith,,,,,,,,\n"


def folder_bundle(path: Path, users: str, *, orgs: str = ORGS) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.csv").write_text(MANIFEST)
    (path / "orgs.csv").write_text(orgs)
    (path / "users.csv").write_text(users)
    return path


def rows_of(bundle: Bundle, name: str) -> tuple[list[int], list[str]]:
    with bundle.reading(name, bundle.encoding(name)) as reading:
        numbers = [row.number for row in reading.rows()]
        return numbers, [cut.fact() for cut in reading.cuts.cuts()]


async def run(
    tenant: Tenant, source: CsvSource, **kwargs: Any
) -> tuple[RunEvent, RecordingProducer]:
    producer = RecordingProducer()
    outcome = await CsvRun(
        producer=cast(Any, producer),
        topics=Topics(),
        tenant=tenant,
        source=source,
        run_id=uuid4(),
        **kwargs,
    ).run()
    return outcome, producer


def csv_tenant(path: Path, limits: FileLimits | None = None) -> tuple[Tenant, CsvSource]:
    source = CsvSource(id="csv", path=path, limits=limits)
    return Tenant(id="t", name="T", sources=[source]), source


# --- lines -----------------------------------------------------------------------------------


def test_a_line_past_the_limit_is_skipped_never_held_and_the_next_rows_are_read(
    tmp_path: Path,
) -> None:
    long_name = "x" * 5000
    users = HEADER + user("u1") + user("u2", long_name) + user("u3")
    bundle = Bundle(folder_bundle(tmp_path, users), FileLimits(max_line_bytes=1024))
    numbers, cuts = rows_of(bundle, "users.csv")
    assert numbers == [2, 4]  # line 3 skipped; line numbers keep counting it
    assert cuts == [
        "[line_too_long] line 3: line 3 is longer than 1024 bytes (max_line_bytes); it is not read"
    ]


def test_lines_are_read_in_pieces_of_the_limit_only() -> None:
    """The stream is never asked for more than the limit (+ a line ending) at a time."""

    class Spy(io.StringIO):
        asked: list[int] = []  # noqa: RUF012

        def readline(self, size: int = -1, /) -> str:  # type: ignore[override]
            self.asked.append(size)
            return super().readline(size)

    text = Spy("a,b\n" + "c" * 100_000 + "\nd,e\n")
    lines = Lines(text, 100)
    got: list[str] = []
    cuts: list[tuple[int, int]] = []
    while True:
        lines.new_row()
        try:
            got.append(next(lines))
        except LineTooLong as cut:
            cuts.append((cut.first, cut.last))
        except StopIteration:
            break
    assert got == ["a,b\n", "d,e\n"]
    assert cuts == [(2, 2)]
    assert max(text.asked) <= 1 << 20  # skipping: a chunk at a time
    assert all(size == 102 for size in text.asked[:2])


def test_crlf_lines_a_line_exactly_at_the_limit_and_a_quoted_row_spanning_lines(
    tmp_path: Path,
) -> None:
    fits = "u2,,,true,o1,student,u2,,Sam," + "y" * (200 - 37) + ",,,,,,,,"
    assert len(fits) == 200
    spanning = 'u3,,,true,o1,student,u3,,"' + "\n".join(["z" * 90] * 4) + '",Smith,,,,,,,,'
    users = HEADER + user("u1") + fits + "\n" + spanning + "\n" + user("u4")
    path = folder_bundle(tmp_path, users.replace("\n", "\r\n"))
    numbers, cuts = rows_of(Bundle(path, FileLimits(max_line_bytes=200)), "users.csv")
    # The quoted row holds four 90-byte lines: past 200 bytes as a row, skipped whole.
    assert numbers == [2, 3, 8]
    assert cuts == [
        "[line_too_long] line 4: the row on lines 4-7 is longer than 200 bytes"
        " (max_line_bytes); it is not read"
    ]


def test_a_crlf_split_by_the_size_cap_does_not_make_a_blank_line() -> None:
    text = io.StringIO("a,b\r\n" + "c" * 11 + "\r\n" + "d,e\r\n", newline="")
    lines = Lines(text, 10)  # reads 12 characters at a time: "ccccccccccc\r", then "\n"
    lines.new_row()
    assert next(lines) == "a,b\r\n"
    lines.new_row()
    with pytest.raises(LineTooLong):
        next(lines)
    lines.new_row()
    assert (next(lines), lines.number) == ("d,e\r\n", 3)


def test_many_long_lines_make_one_finding_naming_the_first_ten(tmp_path: Path) -> None:
    users = HEADER + "".join(user(f"u{i}", "w" * 300 if i % 2 else "ok") for i in range(30))
    _, cuts = rows_of(
        Bundle(folder_bundle(tmp_path, users), FileLimits(max_line_bytes=256)), "users.csv"
    )
    (cut,) = cuts
    assert cut.startswith("[line_too_long] line 3: line 3 is longer than 256 bytes")
    assert cut.endswith("(15 rows in all: lines 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, …)")


def test_a_header_past_the_limits_leaves_the_file_unread_with_a_finding(tmp_path: Path) -> None:
    wide = ",".join(f"metadata.c{i}" for i in range(50)) + "\n"
    path = folder_bundle(tmp_path, HEADER.rstrip("\n") + "," + wide + user("u1"))
    plan = plan_bundle(Bundle(path, FileLimits(max_columns=40)), "lenient")
    users = next(f for f in plan.files if f.spec.entity is EntityType.USER)
    assert not users.published
    assert users.facts.parse_error == (
        "[too_many_columns] line 1: the header has 68 columns, more than 40 (max_columns);"
        " the file is not read"
    )
    (finding,) = file_findings(users.facts)
    assert (finding.code, finding.severity, finding.file, finding.row) == (
        "too_many_columns",
        Severity.ERROR,
        "users.csv",
        1,
    )
    assert "68 columns" in plan.skipped["users.csv"]


def test_a_row_with_too_many_fields_is_skipped(tmp_path: Path) -> None:
    users = HEADER + user("u1") + user("u2").rstrip("\n") + "," * 30 + "\n" + user("u3")
    numbers, cuts = rows_of(
        Bundle(folder_bundle(tmp_path, users), FileLimits(max_columns=25)), "users.csv"
    )
    assert numbers == [2, 4]
    assert cuts == [
        "[too_many_columns] line 3: line 3 has 48 fields, more than 25 (max_columns); it is not read"
    ]


def test_rows_past_the_limit_are_not_read(tmp_path: Path) -> None:
    users = HEADER + "".join(user(f"u{i}") for i in range(10))
    numbers, cuts = rows_of(
        Bundle(folder_bundle(tmp_path, users), FileLimits(max_rows_per_file=4)), "users.csv"
    )
    assert numbers == [2, 3, 4, 5]
    assert cuts == [
        "[too_many_rows] line 6: more than 4 data rows (max_rows_per_file): rows from line 6 on"
        " are not read"
    ]


async def test_a_run_reports_its_cuts_after_the_rows_and_sweeps_nothing_of_the_cut_file(
    tmp_path: Path,
) -> None:
    users = HEADER + user("u1") + user("u2", "x" * 3000) + user("u3")
    tenant, source = csv_tenant(folder_bundle(tmp_path, users), FileLimits(max_line_bytes=1024))
    outcome, producer = await run(tenant, source)

    assert outcome.phase is RunPhase.FETCHED
    assert outcome.file_counts == {"orgs.csv": 1, "users.csv": 2}
    events = producer.events(Topics().fetched)
    records = [e.sourced_id for e in events if isinstance(e, RecordEvent)]
    assert records == ["o1", "u1", "u3"]
    cut_facts = [e.facts for e in events if isinstance(e, FileEvent) and e.facts.parse_error]
    assert len(cut_facts) == 3  # one per partition, after the file's rows
    assert all(f.file == "users.csv" for f in cut_facts if f)
    (finding,) = file_findings(cut_facts[0])
    assert (finding.code, finding.row) == ("line_too_long", 3)
    (marker, *_) = [e.marker for e in events if isinstance(e, RunEnd)]
    assert marker is not None
    assert marker.bulk_entities == [EntityType.ORG]  # users.csv is not a complete snapshot


# --- zips and bundle size --------------------------------------------------------------------


def zip_bundle(path: Path, users: bytes | str, *, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("manifest.csv", MANIFEST)
        zf.writestr("orgs.csv", ORGS)
        zf.writestr("users.csv", users)
    return path


def test_a_zip_bomb_is_refused_from_its_central_directory_before_any_reading(
    tmp_path: Path,
) -> None:
    users = HEADER + "".join(user(f"u{i}") for i in range(40_000))  # 2 MiB, packs ~10:1
    bomb = zip_bundle(tmp_path / "b.zip", users)
    with pytest.raises(
        BundleLimitError, match=r"users\.csv would unpack from .* more than max_zip_ratio \(5\)"
    ):
        Bundle(bomb, FileLimits(max_zip_ratio=5))
    Bundle(bomb).close()  # the default ratio (100) lets it through


def test_a_bundle_too_large_unpacked_is_refused(tmp_path: Path) -> None:
    big = zip_bundle(tmp_path / "b.zip", HEADER + user("u1") * 1000)
    with pytest.raises(BundleLimitError, match=r"unpacked, more than max_bundle_bytes \(10 KiB\)"):
        Bundle(big, FileLimits(max_bundle_bytes=10 * 1024))
    folder = folder_bundle(tmp_path / "f", HEADER + user("u1") * 1000)
    with pytest.raises(BundleLimitError, match="max_bundle_bytes"):
        Bundle(folder, FileLimits(max_bundle_bytes=10 * 1024))
    with pytest.raises(BundleLimitError, match="max_bundle_entries"):
        Bundle(folder, FileLimits(max_bundle_entries=2))


def test_a_member_lying_about_its_size_is_cut_while_reading(tmp_path: Path) -> None:
    """The central directory says 100 bytes; the data holds more: never more than declared is
    read, and the damaged member is a BundleError (not zipfile's own error, which nobody
    expects)."""
    path = zip_bundle(tmp_path / "b.zip", HEADER + user("u1") * 200, method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    # Patch the size its central directory record declares down to 100 bytes.
    at = data.find(b"PK\x01\x02")
    while data[at + 46 : at + 46 + len(b"users.csv")] != b"users.csv":
        at = data.find(b"PK\x01\x02", at + 4)
    data[at + 24 : at + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    bundle = Bundle(path)
    with pytest.raises(BundleError):
        rows_of(bundle, "users.csv")


async def test_a_zip_bomb_fails_the_run_with_the_reason_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    bomb = zip_bundle(tmp_path / "b.zip", "a" * (4 << 20))
    tenant, source = csv_tenant(bomb, FileLimits(max_zip_ratio=10))
    outcome, producer = await run(tenant, source)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason is not None
    assert "max_zip_ratio (10)" in outcome.reason
    assert producer.events(Topics().fetched) == []


async def test_a_damaged_zip_fails_the_run_instead_of_the_fetcher(tmp_path: Path) -> None:
    damaged = zip_bundle(tmp_path / "b.zip", HEADER + user("u1") * 200, method=zipfile.ZIP_STORED)
    data = bytearray(damaged.read_bytes())
    data[data.rfind(b"u1,,,true")] = ord("X")  # the CRC check fails at the member's end
    damaged.write_bytes(bytes(data))
    tenant, source = csv_tenant(damaged)
    outcome, _ = await run(tenant, source)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == "users.csv: the zip is damaged (Bad CRC-32 for file 'users.csv')"


async def test_a_run_failing_once_it_began_publishing_ends_with_aborted_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rostersync_fetcher.csv import records
    from rostersync_fetcher.csv import run as sync

    real = records.event_of_row

    def second_row_breaks(ctx: Any, row: Any, first_rows: Any) -> Any:
        if row.number == 3:
            raise RuntimeError("boom")
        return real(ctx, row, first_rows)

    monkeypatch.setattr(sync, "event_of_row", second_row_breaks)
    tenant, source = csv_tenant(folder_bundle(tmp_path, HEADER + user("u1") + user("u2")))
    outcome, producer = await run(tenant, source)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == "unexpected error reading the bundle: RuntimeError: boom"
    markers = [e.marker for e in producer.events(Topics().fetched) if isinstance(e, RunEnd)]
    assert len(markers) == 3
    assert all(m is not None and m.aborted for m in markers)


# --- links, special files, roots ------------------------------------------------------------


def test_a_symlinked_file_is_never_read_and_its_target_never_reaches_a_finding(
    tmp_path: Path,
) -> None:
    path = folder_bundle(tmp_path / "b", HEADER + user("u1"))
    (path / "users.csv").unlink()
    (path / "users.csv").symlink_to("/proc/self/environ")
    os.environ["ROSTERSYNC_TEST_SECRET_CANARY"] = "canary-7f3a"
    try:
        bundle = Bundle(path)
        plan = plan_bundle(bundle, "strict")
    finally:
        del os.environ["ROSTERSYNC_TEST_SECRET_CANARY"]
    users = next(f for f in plan.files if f.spec.entity is EntityType.USER)
    assert not users.published
    assert users.encoding is None  # not even its encoding was read
    (finding,) = file_findings(users.facts)
    assert finding.code == "unsafe_file"
    assert finding.message == (
        "users.csv is a symbolic link: a bundle's files must be regular files inside it; not read"
    )
    assert "canary" not in repr(plan)
    with pytest.raises(BundleError, match="symbolic link"):
        rows_of(bundle, "users.csv")


def test_a_symlinked_manifest_or_a_fifo_is_refused(tmp_path: Path) -> None:
    path = folder_bundle(tmp_path / "b", HEADER + user("u1"))
    real = tmp_path / "elsewhere.csv"
    (path / "manifest.csv").rename(real)
    (path / "manifest.csv").symlink_to(real)
    with pytest.raises(BundleError, match=r"manifest\.csv is a symbolic link"):
        Bundle(path).manifest()
    (path / "manifest.csv").unlink()
    real.rename(path / "manifest.csv")
    (path / "users.csv").unlink()
    os.mkfifo(path / "users.csv")
    plan = plan_bundle(Bundle(path), "lenient")  # would block forever if the FIFO were opened
    users = next(f for f in plan.files if f.spec.entity is EntityType.USER)
    assert users.facts.parse_error == (
        "[unsafe_file]: users.csv is not a regular file: a bundle's files must be regular files"
        " inside it; not read"
    )


def test_a_zip_member_stored_as_a_symlink_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.csv", MANIFEST)
        link = zipfile.ZipInfo("users.csv")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    bundle = Bundle(path)
    assert bundle.refusal("users.csv") == "users.csv is a symbolic link"


def test_source_roots_confine_sources_and_system_folders_are_always_refused(
    tmp_path: Path,
) -> None:
    assert refusal(Path("/usr"), []) is not None
    assert refusal(Path("/"), []) is not None
    assert refusal(Path("/proc/self"), []) is not None
    assert refusal(tmp_path, []) is None
    roots = [tmp_path / "rosters"]
    assert refusal(tmp_path / "rosters" / "d1", roots) is None
    reason = refusal(tmp_path / "other", roots)
    assert reason is not None
    assert "outside the fetcher's source_roots" in reason
    (tmp_path / "rosters").mkdir()
    (tmp_path / "rosters" / "sneaky").symlink_to("/etc")
    assert refusal(tmp_path / "rosters" / "sneaky", roots) is not None  # links resolved
    (tmp_path / "rosters" / "loop").symlink_to(tmp_path / "rosters" / "loop")
    looping = refusal(tmp_path / "rosters" / "loop", roots)
    assert looping is not None
    assert "cannot be resolved" in looping


async def test_a_source_outside_the_roots_fails_its_run_unread(tmp_path: Path) -> None:
    tenant, source = csv_tenant(Path("/usr"))
    outcome, _ = await run(tenant, source)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == (
        "source path /usr is a system folder (or inside one); not read"
        " (configure the fetcher's source_roots)"
    )
    path = folder_bundle(tmp_path / "b", HEADER + user("u1"))
    tenant, source = csv_tenant(path)
    outcome, _ = await run(tenant, source, roots=[tmp_path / "elsewhere"])
    assert outcome.phase is RunPhase.FAILED
    assert "outside the fetcher's source_roots" in (outcome.reason or "")


def test_the_roots_come_from_the_fetchers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROSTERSYNC_SOURCE_ROOTS", f'["{tmp_path / "allowed"}"]')
    drop = tmp_path / "sftp"
    drop.mkdir()
    (drop / "monday.zip").write_bytes(b"")
    assert inbox.ready_bundles(drop, settle_seconds=0) == []  # refused: never listed
    monkeypatch.setenv("ROSTERSYNC_SOURCE_ROOTS", f'["{tmp_path}"]')
    assert inbox.ready_bundles(drop, settle_seconds=0) == []  # listed; not a zip


# --- inbox claims ------------------------------------------------------------------------------


def test_inbox_skips_symlinks_and_dangling_links_do_not_break_the_scan(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "sneaky.zip").symlink_to(zip_bundle(tmp_path / "elsewhere.zip", user("u1")))
    dropped = folder / "tuesday"
    dropped.mkdir()
    (dropped / "manifest.csv").write_text(MANIFEST)
    (dropped / "users.csv").symlink_to(tmp_path / "missing")
    assert inbox.ready_bundles(folder, settle_seconds=0, now=1e12) == [dropped]


async def test_a_claim_the_fetcher_keeps_dying_on_goes_to_failed(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    bundle = zip_bundle(drop / "monday.zip", HEADER + user("u1"))
    source = InboxSource(id="sftp", kind="inbox", path=drop, max_claim_attempts=2)
    tenant = Tenant(id="t", name="T", sources=[source])
    claimed = inbox.claim(drop, bundle, uuid4())
    # Two runs started on it and never finished (the fetcher died each time).
    assert inbox.note_attempt(claimed.path) == 1
    assert inbox.note_attempt(claimed.path) == 2
    (resumed,) = inbox.pending_claims(drop)
    claimed_source = CsvSource(id="sftp", path=resumed.path)
    outcome, _ = await run(tenant, claimed_source)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == (
        "monday.zip: the fetcher stopped 2 times while reading this bundle"
        " (max_claim_attempts); not read again"
    )
    done = inbox.finish(drop, resumed, outcome)
    assert done.parent.name == "failed"
    assert list((drop / ".processing").iterdir()) == []
    assert inbox.pending_claims(drop) == []


async def test_an_inbox_claim_gets_its_inbox_limits_and_fails_for_a_bomb(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    bundle = zip_bundle(drop / "monday.zip", "a" * (2 << 20))
    source = InboxSource(id="sftp", kind="inbox", path=drop, limits=FileLimits(max_zip_ratio=10))
    tenant = Tenant(id="t", name="T", sources=[source])
    claimed = inbox.claim(drop, bundle, uuid4())
    # What app.py runs for a claim: a CsvSource of the same id, without limits of its own.
    outcome, _ = await run(tenant, CsvSource(id="sftp", path=claimed.path))
    assert outcome.phase is RunPhase.FAILED
    assert "max_zip_ratio (10)" in (outcome.reason or "")
    assert inbox.finish(drop, claimed, outcome).parent.name == "failed"


async def test_an_unexpected_error_fails_the_run_instead_of_the_fetcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(*_: object) -> None:
        raise MemoryError

    monkeypatch.setattr("rostersync_fetcher.csv.run.plan_bundle", out_of_memory)
    tenant, source = csv_tenant(folder_bundle(tmp_path, HEADER + user("u1")))
    outcome, _ = await run(tenant, source)
    assert outcome.phase is RunPhase.FAILED
    assert outcome.reason == "out of memory reading the bundle (lower its limits: see FileLimits)"


# --- configuration -----------------------------------------------------------------------------


def test_limits_in_the_tenants_file_apply_to_every_file_source_and_sources_refine_them(
    tmp_path: Path,
) -> None:
    tenants = tmp_path / "t.toml"
    tenants.write_text(
        "[limits]\nmax_line_bytes = 4096\nmax_zip_ratio = 50\n\n"
        '[[tenants]]\nid = "d1"\nname = "D"\n'
        '[[tenants.sources]]\nid = "a"\nkind = "csv"\npath = "a"\n'
        '[[tenants.sources]]\nid = "b"\nkind = "inbox"\npath = "b"\n'
        "limits = { max_line_bytes = 2048, max_rows_per_file = 10 }\n"
        '[[tenants.sources]]\nid = "api"\nkind = "oneroster-api"\nbase_url = "https://x"\n'
        'auth = { kind = "oauth1", key = "k", secret_env = "S" }\n'
        "max_page_bytes = 1048576\nmax_pages_per_collection = 10\nrequest_deadline_seconds = 30\n"
    )
    tenant = load_tenants(tenants).get("d1")
    a, b, api = tenant.sources
    assert isinstance(a, CsvSource)
    assert isinstance(b, InboxSource)
    assert (a.file_limits.max_line_bytes, a.file_limits.max_zip_ratio) == (4096, 50)
    assert a.file_limits.max_rows_per_file == FileLimits().max_rows_per_file
    assert (b.file_limits.max_line_bytes, b.file_limits.max_rows_per_file) == (2048, 10)
    assert b.file_limits.max_zip_ratio == 50
    assert api.max_page_bytes == 1 << 20  # type: ignore[union-attr]
