"""Fuzz: mutated OneRoster bundles through the fetcher's CSV run and the validator, in process.

Hypothesis starts from small valid bundles (the sample district's files and the generator's 1.1
and 1.2 districts, cut to their first rows, and one whole generated district) and mutates them:
bytes flipped, cut, inserted or removed; columns duplicated, removed, swapped or renamed; rows
repeated, removed or given a field more or less; cells set to quotes, CR/LF, NULs, BOMs, huge
values, invalid UTF-8; manifest values wrong, missing or repeated; files missing, emptied,
renamed, added, re-encoded (BOM, UTF-16, Windows-1252), with other line ends, replaced by links,
FIFOs or folders; the bundle as a folder (at its root, one or two folders down), a zip (stored,
deflated, bzip2, lzma) with odd entries (folders, duplicates, ``../`` and absolute names, links,
a nested zip, backslashes), a damaged zip (bytes flipped or cut, a method or encryption flag it
does not have), or no bundle at all; under the default limits or tight ones (so that every
limit is reached), lenient or strict.

Each bundle goes through ``CsvRun`` (a recording producer instead of Kafka) and one long-lived
``ValidatorHandler`` (no database: no tenant records are known), as the services run them. It
counts crashes — an exception escaping either, or a run failed by the fetcher's catch-all
("unexpected error"): a run failed with its reason (no manifest, a zip bomb…) is the documented
refusal, not a crash — and checks that every record is accounted for (each record event is
forwarded or rejected with an error finding; a fetched run's counts match its records; every run
that began publishing ends with a marker on every partition; forwarded payloads hold no NUL; what
the validator sends serializes). Prints a table: examples, crashes, outcomes, peak RSS and its
growth after a warm-up, time. Exits 1 on any crash or broken invariant (the first of each kind is
saved with its bundle and traceback under --save, by default .benchmarks/fuzz-bundles/).

    .venv/bin/python -m benchmarks.fuzz_bundles --examples 10000 [--seed N] [--save DIR]

Deterministic: the same --seed (default 0) gives the same examples. Hypothesis runs in rounds of
1,000 examples, each with its own seed: what it keeps about every example it ran is dropped
after each round, so the RSS growth is the fetcher's and the validator's, not Hypothesis's.
The first of each failure reason is listed with its example in refusals.txt under --save.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import csv
import io
import logging
import os
import re
import resource
import shutil
import stat
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from rostersync_cli.generate import DistrictShape, generate
from rostersync_fetcher.csv.run import CsvRun
from rostersync_libs.events import (
    Event,
    FileEvent,
    RecordBatch,
    RecordEvent,
    RunEnd,
    decode,
    records_of,
)
from rostersync_libs.findings import Severity, bounded, findings_to_json
from rostersync_libs.runs import RunEvent, RunPhase
from rostersync_libs.tenants import CsvSource, FileLimits, Tenant
from rostersync_libs.topics import Topics
from rostersync_validator.handler import ValidatorHandler

from tests.fakes import FakeKnown, RecordingProducer

ROOT = Path(__file__).resolve().parent.parent
SPRINGFIELD = ROOT / "examples" / "springfield"
PARTITIONS = 3
KEEP_ROWS = 6  # data rows kept of each base file (small bundles: many examples per second)
BATCH = 500  # records per validator batch
ROUND = 1000  # examples per Hypothesis run (see run)
CRASH_REASONS = ("unexpected error", "out of memory")

TIGHT = FileLimits(
    max_line_bytes=2048,
    max_rows_per_file=25,
    max_columns=30,
    max_bundle_bytes=300_000,
    max_zip_ratio=3,
    max_bundle_entries=25,
)
LIMITS = {"default": FileLimits(), "tight": TIGHT}

# ---------------------------------------------------------------------------------------------
# Base bundles: relative path → bytes


def _read_folder(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _first_rows(files: dict[str, bytes], keep: int) -> dict[str, bytes]:
    """Each CSV cut to its header and first ``keep`` data rows (the manifest whole)."""
    cut: dict[str, bytes] = {}
    for name, data in files.items():
        if name == "manifest.csv":
            cut[name] = data
            continue
        lines = data.splitlines(keepends=True)
        cut[name] = b"".join(lines[: keep + 1])
    return cut


def base_bundles() -> dict[str, dict[str, bytes]]:
    bases: dict[str, dict[str, bytes]] = {}
    bases["springfield"] = _first_rows(_read_folder(SPRINGFIELD), KEEP_ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        for version in ("1.1", "1.2"):
            folder = Path(tmp) / version
            generate(folder, DistrictShape(students=2, version=version, seed=7))
            whole = _read_folder(folder)
            bases[f"generated-{version}"] = _first_rows(whole, KEEP_ROWS)
            if version == "1.1":
                bases["generated-1.1-whole"] = whole  # ~400 records: dependencies resolve
    return bases


BASES = base_bundles()
# The whole district once in eight: it is slower, and the small ones reach the same code.
BASE_NAMES = ["springfield", "springfield", "generated-1.1", "generated-1.1"]
BASE_NAMES += ["generated-1.2", "generated-1.2", "generated-1.2", "generated-1.1-whole"]

# ---------------------------------------------------------------------------------------------
# Strategies

SPECIAL_BLOBS = [
    b"\x00",
    b'"',
    b'""',
    b"\r",
    b"\n",
    b"\r\n",
    b",",
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
    b"\xc3\x28",  # invalid continuation
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\x80",
    b"\xe2\x82",  # cut inside a character
    b"\x81\x8d\x8f\x90\x9d",  # undefined in Windows-1252
    b"\x1a",
    b"\t",
    "\u2028".encode(),
    b'"\n"',
    "é".encode("cp1252"),
    b"PK\x03\x04",
]
SPECIAL_CELLS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    " \x00 ",
    '"',
    '""x',
    'x"y',
    "a,b",
    " , ",
    ",,,",
    "\r\n",
    "\n",
    "\r",
    "line\nbreak",
    "TRUE",
    "false",
    "tobedeleted",
    "inactive",
    "Active",
    "ext:foo",
    "ext:",
    "2026-02-30",
    "2026-01-02",
    "2026-01-02T10:00:00+02:00",
    "2026-01-02T10:00:00",
    "not a date",
    "{SIS:1}",
    "{bad",
    "KG",
    "99",
    "\ufeff",
    "\ufeffsourcedId",
    "é",
    "\u2028",
    "ユーザー",
    "\udc80",  # a lone surrogate: written as invalid UTF-8
    "\U0001f600",
    "x" * 5000,
    "org-es1,org-district,org-es1",
]
HEADER_NAMES = [
    "SOURCEDID",
    " sourcedId ",
    "sourcedid",
    "metadata.house",
    "metadata.",
    "metadata.a\x00b",
    "unknownColumn",
    "",
    "password",
    "status",
    "givenName",
    "\ufeffsourcedId",
]


def _words(text: str) -> list[str]:
    return text.split()


# Columns whose values the validator checks, and values that make it say something.
FIELDS = _words("""sourcedId status dateLastModified enabledUser orgSourcedIds role userIds grades
agentSourcedIds type parentSourcedId schoolYear startDate endDate classType termSourcedIds
courseSourcedId schoolSourcedId classSourcedId userSourcedId primary beginDate birthDate sex
subjects subjectCodes roleType userProfileSourcedId""")
VALUES = _words("""true TRUE yes active tobedeleted inactive Active 2026-01-02 2026-13-45
2026-01-02T10:00:00Z 2026-01-02T10:00:00+02:00 2026 26 student teacher principal ext:x KG 9 13
school district term gradingPeriod homeroom scheduled female other {SIS:1} nope org-es1
usr-0000001 as-2026 a,b,c""")
MANIFEST_KEYS = [
    "",
    *_words("""oneroster.version manifest.version file.users file.orgs file.enrollments
file.classes file.courses file.academicSessions file.demographics file.roles file.userProfiles
file.resources file.results file.Users source.systemName"""),
]
MANIFEST_VALUES = [
    "",
    " Delta ",
    "\x00",
    *_words("bulk delta absent BULK nonsense 1.1 1.2 1.0 2.0 bulk,delta"),
]
ADDED_NAMES = _words("""extra.csv results.csv lineItems.csv roles.csv userProfiles.csv USERS.csv
users.CSV sub/users.csv sub/manifest.csv notes.txt .hidden.csv manifest.csv.bak Manifest.csv""")
RENAMES = _words("upper lower-first sub/ .bak .CSV space")
# (folders and plain zips twice as often)
CONTAINERS = _words("""folder folder folder-nested folder-deep zip zip zip-stored zip-bzip2 zip-lzma
zip-nested not-a-bundle""")

index = st.integers(0, 1 << 16)
blob = st.one_of(st.sampled_from(SPECIAL_BLOBS), st.binary(max_size=48))


@dataclass(frozen=True)
class Huge:
    """A cell of ``size`` characters, made only when the bundle is written: Hypothesis keeps
    what it draws (a drawn 2 MB string would count as the harness's memory, not the code's)."""

    size: int

    def text(self) -> str:
        return "x" * self.size


huge = st.integers(1, 30).map(lambda k: Huge(k * 70_000))  # up to 2.1 MB: past tight limits
cell = st.one_of(st.sampled_from(SPECIAL_CELLS), st.text(max_size=16), huge)

Op = tuple[Any, ...]
ops_strategy: st.SearchStrategy[Op] = st.one_of(
    # bytes
    st.tuples(st.just("flip"), index, index, st.integers(0, 255)),
    st.tuples(st.just("truncate"), index, index),
    st.tuples(st.just("insert"), index, index, blob),
    st.tuples(st.just("delete"), index, index, st.integers(1, 200)),
    # CSV structure
    st.tuples(st.just("column"), index, st.sampled_from(["dup", "remove", "swap"]), index, index),
    st.tuples(st.just("rename_column"), index, index, st.sampled_from(HEADER_NAMES)),
    st.tuples(
        st.just("row"),
        index,
        st.sampled_from(["dup", "remove", "swap", "wider", "narrower"]),
        index,
        index,
    ),
    st.tuples(st.just("cell"), index, index, index, cell),
    st.tuples(st.just("field"), index, st.sampled_from(FIELDS), index, cell),
    st.tuples(st.just("field"), index, st.sampled_from(FIELDS), index, st.sampled_from(VALUES)),
    # manifest
    st.tuples(
        st.just("manifest"), st.sampled_from(MANIFEST_KEYS), st.sampled_from(MANIFEST_VALUES)
    ),
    st.tuples(st.just("manifest_drop"), st.sampled_from(MANIFEST_KEYS)),
    st.tuples(
        st.just("manifest_twice"), st.sampled_from(MANIFEST_KEYS), st.sampled_from(MANIFEST_VALUES)
    ),
    # files
    st.tuples(st.just("remove_file"), index),
    st.tuples(st.just("empty_file"), index),
    st.tuples(st.just("rename_file"), index, st.sampled_from(RENAMES)),
    st.tuples(st.just("add_file"), st.sampled_from(ADDED_NAMES), st.one_of(blob, index)),
    st.tuples(st.just("encoding"), index, st.sampled_from(["bom", "bom2", "utf16", "cp1252"])),
    st.tuples(st.just("newlines"), index, st.sampled_from(["crlf", "cr", "none"])),
    st.tuples(
        st.just("special"),
        index,
        st.sampled_from(["link", "link-out", "link-dangling", "fifo", "dir"]),
    ),
)
ZIP_ODDITIES = ["dir", "dup", "traversal", "absolute", "link", "nested-zip", "backslash", "empty"]
zip_odd = st.tuples(st.sampled_from(ZIP_ODDITIES), index)
zip_damage = st.one_of(
    st.none(),
    st.tuples(st.just("flip"), index, st.integers(0, 255)),
    st.tuples(st.just("truncate"), index),
    st.tuples(st.just("method"), index, st.sampled_from([1, 6, 13, 99])),
    st.tuples(st.just("encrypted"), index),
)


@dataclass(frozen=True)
class Case:
    base: str
    ops: list[Op]
    container: str
    zip_odd: list[tuple[str, int]]
    zip_damage: tuple[Any, ...] | None
    profile: str
    limits: str


cases = st.builds(
    Case,
    base=st.sampled_from(BASE_NAMES),
    ops=st.lists(ops_strategy, max_size=6),
    container=st.sampled_from(CONTAINERS),
    zip_odd=st.lists(zip_odd, max_size=3),
    zip_damage=zip_damage,
    profile=st.sampled_from(["lenient", "strict"]),
    limits=st.sampled_from(["default", "default", "default", "tight"]),
)

# ---------------------------------------------------------------------------------------------
# Mutations


@dataclass
class Files:
    """A bundle being mutated: files by relative path, and special entries (links, FIFOs…)."""

    data: dict[str, bytes]
    special: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (kind, target)

    def pick(self, i: int) -> str | None:
        names = sorted(self.data)
        return names[i % len(names)] if names else None


def _table(data: bytes) -> list[list[str]] | None:
    try:
        return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        return None


def _untable(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def _column(rows: list[list[str]], kind: str, i: int, j: int) -> None:
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return
    i, j = i % width, j % width
    for row in rows:
        if i >= len(row):
            continue
        if kind == "dup":
            row.insert(j % (len(row) + 1), row[i])
        elif kind == "remove":
            del row[i]
        elif j < len(row):
            row[i], row[j] = row[j], row[i]


def _row(rows: list[list[str]], kind: str, i: int, j: int) -> None:
    if not rows:
        return
    i, j = i % len(rows), j % len(rows)
    if kind == "dup":
        rows.insert(j, list(rows[i]))
    elif kind == "remove":
        del rows[i]
    elif kind == "swap":
        rows[i], rows[j] = rows[j], rows[i]
    elif kind == "wider":
        rows[i].append("extra")
    elif rows[i]:
        rows[i].pop()


def _manifest(files: Files, key: str, value: str | None, twice: bool = False) -> None:
    rows = _table(files.data.get("manifest.csv", b"")) or [["propertyName", "value"]]
    kept = [r for r in rows if twice or not r or r[0] != key]
    if value is not None:
        kept.append([key, value])
    files.data["manifest.csv"] = _untable(kept)


def _reencode(data: bytes, how: str) -> bytes:
    text = data.decode("utf-8", "replace")
    if how == "bom":
        return codecs.BOM_UTF8 + data
    if how == "bom2":
        return codecs.BOM_UTF8 + codecs.BOM_UTF8 + data
    if how == "utf16":
        return text.encode("utf-16")
    return text.encode("cp1252", "replace")


def _renamed(name: str, how: str) -> str:
    if how == "upper":
        return name.upper()
    if how == "lower-first":
        return name[:1].lower() + name[1:].upper()
    if how == "sub/":
        return "sub/" + name
    if how == "space":
        return name + " "
    return name + how if how == ".bak" else name.removesuffix(".csv") + how


def mutate(base: dict[str, bytes], ops: list[Op]) -> Files:
    files = Files(dict(base))
    for op in ops:
        kind = op[0]
        if kind == "manifest":
            _manifest(files, op[1], op[2])
            continue
        if kind == "manifest_drop":
            _manifest(files, op[1], None)
            continue
        if kind == "manifest_twice":
            _manifest(files, op[1], op[2], twice=True)
            continue
        if kind == "add_file":
            content = op[2] if isinstance(op[2], bytes) else files.data.get(files.pick(op[2]) or "")
            files.data[op[1]] = content or b""
            continue
        name = files.pick(op[1])
        if name is None:
            continue
        data = files.data[name]
        n = len(data)
        if kind == "flip" and n:
            pos = op[2] % n
            files.data[name] = data[:pos] + bytes([op[3]]) + data[pos + 1 :]
        elif kind == "truncate":
            files.data[name] = data[: op[2] % (n + 1)]
        elif kind == "insert":
            pos = op[2] % (n + 1)
            files.data[name] = data[:pos] + op[3] + data[pos:]
        elif kind == "delete" and n:
            pos = op[2] % n
            files.data[name] = data[:pos] + data[pos + op[3] :]
        elif kind in ("column", "rename_column", "row", "cell", "field"):
            rows = _table(data)
            if rows is None:
                continue
            if kind == "column":
                _column(rows, op[2], op[3], op[4])
            elif kind == "rename_column" and rows and rows[0]:
                rows[0][op[2] % len(rows[0])] = op[3]
            elif kind == "row":
                _row(rows, op[2], op[3], op[4])
            elif kind == "field" and len(rows) > 1:
                if op[2] in rows[0]:
                    row = rows[1 + op[3] % (len(rows) - 1)]
                    at = rows[0].index(op[2])
                    if at < len(row):
                        value = op[4]
                        row[at] = value.text() if isinstance(value, Huge) else value
            elif kind == "cell" and rows:
                row = rows[op[2] % len(rows)]
                if row:
                    value = op[4]
                    row[op[3] % len(row)] = value.text() if isinstance(value, Huge) else value
            files.data[name] = _untable(rows)
        elif kind == "remove_file":
            del files.data[name]
        elif kind == "empty_file":
            files.data[name] = b""
        elif kind == "rename_file":
            files.data[_renamed(name, op[2])] = files.data.pop(name)
        elif kind == "encoding":
            files.data[name] = _reencode(data, op[2])
        elif kind == "newlines":
            ending = {"crlf": b"\r\n", "cr": b"\r", "none": b""}[op[2]]
            files.data[name] = data.replace(b"\r\n", b"\n").replace(b"\n", ending)
        elif kind == "special":
            del files.data[name]
            others = sorted(files.data)
            target = {
                "link": others[0] if others else "nowhere.csv",
                "link-out": "/etc/passwd",
                "link-dangling": "nowhere.csv",
            }.get(op[2], "")
            files.special[name] = (op[2], target)
    return files


# ---------------------------------------------------------------------------------------------
# Containers


def write_folder(folder: Path, files: Files) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.data.items():
        path = folder / name
        if path.is_dir():
            continue  # a name is both a file and a folder: the folder stays
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.is_file():
            continue
        path.write_bytes(data)
    for name, (kind, target) in files.special.items():
        path = folder / name
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind.startswith("link"):
            os.symlink(target, path)
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.mkdir()


def _zip_bytes(files: Files, method: int, prefix: str, odd: list[tuple[str, int]]) -> bytes:
    out = io.BytesIO()
    names = sorted(files.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        with zipfile.ZipFile(out, "w", compression=method) as archive:
            for name in names:
                archive.writestr(prefix + name, files.data[name])
            for name, (kind, target) in files.special.items():
                if kind.startswith("link"):
                    info = zipfile.ZipInfo(prefix + name)
                    info.external_attr = (stat.S_IFLNK | 0o777) << 16
                    archive.writestr(info, target)
                elif kind == "dir":
                    archive.writestr(prefix + name + "/", b"")
            for kind, i in odd:
                some = names[i % len(names)] if names else "users.csv"
                content = files.data.get(some, b"")
                if kind == "dir":
                    archive.writestr(prefix + some + "/", b"")
                elif kind == "dup":
                    archive.writestr(prefix + some, content[: len(content) // 2])
                elif kind == "traversal":
                    archive.writestr("../" + some, content)
                elif kind == "absolute":
                    archive.writestr("/" + some, content)
                elif kind == "link":
                    info = zipfile.ZipInfo(prefix + some + ".lnk.csv")
                    info.external_attr = (stat.S_IFLNK | 0o777) << 16
                    archive.writestr(info, "../../etc/passwd")
                elif kind == "nested-zip":
                    inner = _zip_bytes(files, zipfile.ZIP_DEFLATED, "", [])
                    archive.writestr(prefix + "inner.zip", inner)
                elif kind == "backslash":
                    archive.writestr(prefix.replace("/", "\\") + "x\\" + some, content)
                else:
                    archive.writestr(prefix + "empty.csv", b"")
    return out.getvalue()


def _damaged(data: bytes, damage: tuple[Any, ...] | None) -> bytes:
    if damage is None or not data:
        return data
    kind = damage[0]
    if kind == "flip":
        pos = damage[1] % len(data)
        return data[:pos] + bytes([damage[2]]) + data[pos + 1 :]
    if kind == "truncate":
        return data[: damage[1] % len(data)]
    # Patch one entry of the central directory (and its local header): a compression method
    # the member was not written with, or the encryption flag.
    central = [m.start() for m in re.finditer(b"PK\x01\x02", data)]
    if not central:
        return data
    at = central[damage[1] % len(central)]
    local = int.from_bytes(data[at + 42 : at + 46], "little")
    patched = bytearray(data)
    if kind == "method":
        value = damage[2].to_bytes(2, "little")
        patched[at + 10 : at + 12] = value
        if data[local : local + 4] == b"PK\x03\x04":
            patched[local + 8 : local + 10] = value
    else:
        patched[at + 8] |= 1
        if data[local : local + 4] == b"PK\x03\x04":
            patched[local + 6] |= 1
    return bytes(patched)


METHODS = {
    "zip": zipfile.ZIP_DEFLATED,
    "zip-nested": zipfile.ZIP_DEFLATED,
    "zip-stored": zipfile.ZIP_STORED,
    "zip-bzip2": zipfile.ZIP_BZIP2,
    "zip-lzma": zipfile.ZIP_LZMA,
}


def build(case: Case, files: Files, where: Path) -> Path:
    """The bundle on disk as the case says; returns the source path."""
    container = case.container
    if container == "folder":
        write_folder(where / "bundle", files)
        return where / "bundle"
    if container == "folder-nested":
        write_folder(where / "bundle" / "export", files)
        return where / "bundle"
    if container == "folder-deep":
        write_folder(where / "bundle" / "a" / "b", files)
        return where / "bundle"
    if container == "not-a-bundle":
        path = where / "bundle.zip"
        path.write_bytes(next(iter(files.data.values()), b""))
        return path
    prefix = "export/" if container == "zip-nested" else ""
    data = _zip_bytes(files, METHODS[container], prefix, case.zip_odd)
    path = where / "bundle.zip"
    path.write_bytes(_damaged(data, case.zip_damage))
    return path


# ---------------------------------------------------------------------------------------------
# Running and checking


@dataclass
class Problem:
    kind: str  # crash | invariant
    signature: str
    detail: str
    case: Case


@dataclass
class Tally:
    examples: int = 0
    fetched: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    records: int = 0
    forwarded: int = 0
    forwarded_with_warnings: int = 0
    rejected: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    file_findings: Counter[str] = field(default_factory=Counter)
    containers: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rss_kb: dict[str, tuple[int, int]] = field(default_factory=dict)  # label → (peak, current)
    refusals: dict[str, str] = field(default_factory=dict)  # reason kind → its first example


class Captured(logging.Handler):
    """Tracebacks the fetcher logs when its catch-all fails a run (log.exception)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.texts.append("".join(traceback.format_exception(*record.exc_info)))


def _reason_kind(reason: str) -> str:
    """A failed run's reason without its variable parts (names, numbers, paths)."""
    text = re.sub(r"\(.*\)", "(…)", reason)
    text = re.sub(r"[\w./-]*\.(csv|zip|lnk|txt|bak|CSV)\b:?", "FILE", text)
    text = re.sub(r"\d[\d,.]*\s*(bytes|B|KiB|MiB|GiB|kB|MB)?", "N", text)
    text = re.sub(r"/[^\s;:,]+", "PATH", text)
    return text[:90]


def _short(case: Case) -> str:
    """The case as Python, its long texts cut (the bundle itself is saved next to it)."""
    text = repr(case)
    return re.sub(r"(['\"])([^'\"]{60})[^'\"]{40,}\1", r"\1\2…\1", text)


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/rostersync_" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__} at {where}"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class Fuzzer:
    def __init__(self, workdir: Path, save: Path) -> None:
        self.workdir = workdir
        self.save = save
        self.tally = Tally()
        self.loop = asyncio.new_event_loop()
        self.handler = ValidatorHandler(FakeKnown())  # long-lived, as in the service
        self.captured = Captured()
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self.captured)
        root.setLevel(logging.ERROR)  # runs failed with a reason log it: thousands of lines
        self._saved: set[str] = set()

    def close(self) -> None:
        self.loop.close()
        root = logging.getLogger()
        root.removeHandler(self.captured)
        root.setLevel(self._level)

    def write_refusals(self) -> None:
        if self.tally.refusals:
            self.save.mkdir(parents=True, exist_ok=True)
            listed = (f"{kind}\n    {example}\n" for kind, example in self.tally.refusals.items())
            (self.save / "refusals.txt").write_text("\n".join(listed))

    def problem(self, kind: str, signature: str, detail: str, case: Case, where: Path) -> None:
        self.tally.problems.append(Problem(kind, signature, detail, case))
        if signature in self._saved:
            return
        self._saved.add(signature)
        target = self.save / f"{len(self._saved):03d}-{kind}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        (target / "problem.txt").write_text(f"{kind}: {signature}\n\n{_short(case)}\n\n{detail}\n")
        for entry in where.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, target / entry.name, symlinks=True)
            elif entry.is_file() and not entry.is_symlink():
                shutil.copy2(entry, target / entry.name)

    def one(self, case: Case) -> None:
        tally = self.tally
        tally.examples += 1
        tally.containers[case.container] += 1
        where = Path(tempfile.mkdtemp(dir=self.workdir))
        started = time.perf_counter()
        try:
            files = mutate(BASES[case.base], case.ops)
            source = build(case, files, where)
            self.captured.texts.clear()
            try:
                outcome, producer = self.loop.run_until_complete(self._fetch(case, source, where))
            except Exception as exc:
                detail = "".join(traceback.format_exception(exc))
                self.problem("crash", "fetcher: " + _signature(exc), detail, case, where)
                return
            self._check_run(case, outcome, producer, where)
        finally:
            tally.seconds.append(time.perf_counter() - started)
            shutil.rmtree(where, ignore_errors=True)

    async def _fetch(
        self, case: Case, source: Path, where: Path
    ) -> tuple[RunEvent, RecordingProducer]:
        producer = RecordingProducer(PARTITIONS)
        tenant = Tenant(
            id="t",
            name="T",
            validation="strict" if case.profile == "strict" else "lenient",
            sources=[CsvSource(id="csv", path=source)],
        )
        run = CsvRun(
            producer=cast(Any, producer),
            topics=Topics(),
            tenant=tenant,
            source=cast(CsvSource, tenant.sources[0]),
            run_id=uuid4(),
            limits=LIMITS[case.limits],
            roots=[where],
        )
        return await run.run(), producer

    def _check_run(
        self, case: Case, outcome: RunEvent, producer: RecordingProducer, where: Path
    ) -> None:
        tally = self.tally
        events = [(decode(v), p) for t, v, p in producer.sent if t == Topics().fetched]
        records = [r for e, _ in events if isinstance(e, RecordBatch) for r in records_of(e)]
        markers = [e for e, _ in events if isinstance(e, RunEnd)]
        began = any(isinstance(e, FileEvent) for e, _ in events)
        tally.records += len(records)
        if outcome.phase is RunPhase.FETCHED:
            tally.fetched += 1
            if sum(outcome.file_counts.values()) != len(records):
                self.problem(
                    "invariant",
                    "fetched counts differ from the records sent",
                    f"{outcome.file_counts} vs {len(records)}",
                    case,
                    where,
                )
            if len(markers) != PARTITIONS or any(m.marker.aborted for m in markers):
                self.problem(
                    "invariant",
                    "a fetched run without a marker on every partition",
                    f"{len(markers)} markers",
                    case,
                    where,
                )
        elif outcome.phase is RunPhase.FAILED:
            reason = outcome.reason or ""
            if reason.startswith(CRASH_REASONS):
                detail = reason + "\n\n" + "\n".join(self.captured.texts)
                kind = reason.split(":", 2)[1].strip() if ":" in reason else reason
                self.problem("crash", f"fetcher caught: {kind}", detail, case, where)
            else:
                kind = _reason_kind(reason)
                tally.failed[kind] += 1
                tally.refusals.setdefault(kind, f"{reason}\n    {_short(case)}")
            if began and (len(markers) != PARTITIONS or not all(m.marker.aborted for m in markers)):
                self.problem(
                    "invariant",
                    "a failed run that began without aborted markers",
                    f"{len(markers)} markers",
                    case,
                    where,
                )
            if not began and records:
                self.problem("invariant", "records of a run that never began", "", case, where)
        else:
            self.problem("invariant", f"run ended {outcome.phase}", str(outcome), case, where)
        try:
            self._validate(case, events, where)
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc))
            self.problem("crash", "validator: " + _signature(exc), detail, case, where)

    def _validate(self, case: Case, events: list[tuple[Event, int | None]], where: Path) -> None:
        pending: list[RecordEvent] = []
        for event, partition in events:
            if isinstance(event, FileEvent):
                self._judge(case, pending, where)
                pending = []
                found = self.handler.on_file(event, partition or 0)
                self.tally.file_findings.update(f.code for f in found)
                findings_to_json(bounded(found))
            elif isinstance(event, RecordBatch):
                pending.extend(records_of(event))
                if len(pending) >= BATCH:
                    self._judge(case, pending, where)
                    pending = []
        self._judge(case, pending, where)

    def _judge(self, case: Case, records: list[RecordEvent], where: Path) -> None:
        if not records:
            return
        tally = self.tally
        outcomes = self.loop.run_until_complete(self.handler.handle(records))
        if len(outcomes) != len(records):
            self.problem(
                "invariant",
                "the validator answered for fewer records",
                f"{len(outcomes)} of {len(records)}",
                case,
                where,
            )
        for event, result in zip(records, outcomes, strict=False):
            tally.findings.update(f.code for f in result.findings)
            findings_to_json(bounded(result.findings))  # what the stage sends must serialize
            if result.forward is not None:
                tally.forwarded += 1
                tally.forwarded_with_warnings += bool(result.findings)
                result.forward.to_bytes()
                if _has_nul(result.forward.payload):
                    self.problem(
                        "invariant",
                        "a forwarded payload holds a NUL",
                        repr(event.origin),
                        case,
                        where,
                    )
            elif any(f.severity is Severity.ERROR for f in result.findings):
                tally.rejected += 1
            else:
                self.problem(
                    "invariant",
                    "a record neither forwarded nor rejected with an error",
                    repr(event.origin),
                    case,
                    where,
                )


def rss_kb() -> tuple[int, int]:
    """(peak RSS of this process, current RSS), in KiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return peak, current


def run(examples: int, seed_value: int, save: Path) -> Tally:
    """``examples`` bundles in rounds of :data:`ROUND`, round ``i`` with seed
    ``seed_value * 100_000 + i``: Hypothesis's bookkeeping grows with every example of a run
    (about 15 kB each) and is dropped when the run ends, so RSS growth is the code's own."""
    with tempfile.TemporaryDirectory(prefix="fuzz-bundles-") as tmp:
        fuzzer = Fuzzer(Path(tmp), save)
        tally = fuzzer.tally
        tally.rss_kb["start"] = rss_kb()
        warm = max(1, examples // 5)
        progress = max(1, examples // 20)

        def example(case: Case) -> None:
            fuzzer.one(case)
            if tally.examples == warm:
                tally.rss_kb["after warm-up"] = rss_kb()
            if tally.examples % progress == 0:
                peak, current = rss_kb()
                print(
                    f"  {tally.examples:>7,} examples  {len(tally.problems)} problems"
                    f"  RSS {current / 1024:.0f} MB (peak {peak / 1024:.0f} MB)"
                    f"  {sum(tally.seconds):.0f} s",
                    flush=True,
                )

        try:
            for round_ in range(0, examples, ROUND):
                test: Callable[[], None] = settings(
                    max_examples=min(ROUND, examples - round_),
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],  # nothing raises: nothing to shrink
                    suppress_health_check=[
                        HealthCheck.too_slow,
                        HealthCheck.data_too_large,
                        HealthCheck.large_base_example,
                        HealthCheck.filter_too_much,
                    ],
                )(given(case=cases)(example))
                seed(seed_value * 100_000 + round_ // ROUND)(test)()
        finally:
            tally.rss_kb["end"] = rss_kb()
            fuzzer.close()
            fuzzer.write_refusals()
    return tally


def report(tally: Tally, wall: float) -> None:
    def mb(kb: int) -> str:
        return f"{kb / 1024:.0f} MB"

    times = sorted(tally.seconds)
    start, warm, end = (tally.rss_kb.get(k, (0, 0)) for k in ("start", "after warm-up", "end"))
    crashes = [p for p in tally.problems if p.kind == "crash"]
    broken = [p for p in tally.problems if p.kind == "invariant"]
    rows = [
        ("examples run", f"{tally.examples:,}"),
        ("crashes", f"{len(crashes):,}"),
        ("broken invariants", f"{len(broken):,}"),
        ("runs fetched / failed with a reason", f"{tally.fetched:,} / {tally.failed.total():,}"),
        ("record events", f"{tally.records:,}"),
        ("  forwarded (with warnings)", f"{tally.forwarded:,} ({tally.forwarded_with_warnings:,})"),
        ("  rejected with an error", f"{tally.rejected:,}"),
        ("  unaccounted", f"{tally.records - tally.forwarded - tally.rejected:,}"),
        (
            "record findings / file findings",
            f"{tally.findings.total():,} / {tally.file_findings.total():,}",
        ),
        (
            "finding codes seen: record / file",
            f"{len(tally.findings)} / {len(tally.file_findings)}",
        ),
        ("peak RSS: start / after warm-up / end", f"{mb(start[0])} / {mb(warm[0])} / {mb(end[0])}"),
        ("peak RSS growth after warm-up", mb(end[0] - warm[0])),
        ("current RSS: after warm-up / end", f"{mb(warm[1])} / {mb(end[1])}"),
        ("duration (wall)", f"{wall:.0f} s"),
        (
            "per example: mean / p99 / max",
            f"{1000 * sum(times) / max(1, len(times)):.0f} / "
            f"{1000 * times[int(0.99 * (len(times) - 1))] if times else 0:.0f} / "
            f"{1000 * times[-1] if times else 0:.0f} ms",
        ),
        ("machine", f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("\ncontainers:", ", ".join(f"{k} {v:,}" for k, v in tally.containers.most_common()))
    print("\nfailed runs by reason:")
    for reason, count in tally.failed.most_common(12):
        print(f"  {count:>6,}  {reason}")
    for what, codes in (("record", tally.findings), ("file", tally.file_findings)):
        print(f"\n{what} finding codes:")
        print("  " + ", ".join(f"{c} {n:,}" for c, n in codes.most_common()))
    if tally.problems:
        print("\nproblems by signature:")
        for (kind, sig), count in Counter((p.kind, p.signature) for p in tally.problems).items():
            print(f"  {count:>6,}  {kind}: {sig}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=1000, help="bundles to run (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the examples (default 0)")
    parser.add_argument(
        "--save",
        type=Path,
        default=ROOT / ".benchmarks" / "fuzz-bundles",
        help="where problems are saved, each with its bundle (default .benchmarks/fuzz-bundles)",
    )
    args = parser.parse_args(argv)
    print(f"fuzzing {args.examples:,} mutated bundles (seed {args.seed})")
    began = time.perf_counter()
    tally = run(args.examples, args.seed, args.save)
    report(tally, time.perf_counter() - began)
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
