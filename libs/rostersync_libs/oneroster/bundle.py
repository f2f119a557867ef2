"""Reading a OneRoster CSV bundle (a folder or a .zip), one row at a time.

Rows are streamed: memory stays flat whatever the size of a file. Files are UTF-8 (a BOM is
tolerated, as the spec requires); a file in another encoding is detected, read as what it most
likely is, and reported.

The source's limits (``FileLimits``) apply before and while reading (see cuts.py): a zip's
declared sizes and ratios are checked when it is opened and every member's bytes are counted as
they are read; a folder's files must be regular files inside it (a symbolic link, a device or a
FIFO is never opened), and only its first two levels are listed.
"""

from __future__ import annotations

import codecs
import csv
import io
import lzma
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rostersync_libs.oneroster.cuts import (
    LINE_TOO_LONG,
    TOO_MANY_COLUMNS,
    Cut,
    FileCuts,
    Lines,
    LineTooLong,
    human,
)
from rostersync_libs.tenants import FileLimits

MANIFEST = "manifest.csv"
CHUNK = 1 << 20
RATIO_FLOOR = 1 << 20  # zip members smaller than this are not held to max_zip_ratio

# What a damaged zip member raises as it is unpacked: zipfile's own errors and its codecs'
# (deflate: zlib.error, lzma: LZMAError; bzip2 raises OSError, see _Counted).
UNPACK_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError)

# Real files carry fields longer than the csv module's default limit (128 KiB) only when broken,
# but a long list of sourcedIds can pass it: allow 16 MiB, still bounded.
csv.field_size_limit(16 << 20)


class BundleError(Exception):
    """The bundle cannot be read at all (no manifest, unreadable zip...)."""


class BundleLimitError(BundleError):
    """The bundle passes a limit that makes it unreadable as a whole (a zip bomb…)."""


class UnsafeFileError(BundleError):
    """A file of the bundle is a symbolic link, not a regular file, or outside the bundle."""


@dataclass(frozen=True)
class Encoding:
    name: str  # a Python codec name
    problem: str | None = None  # set when the file is not UTF-8


@dataclass(frozen=True)
class ManifestEntry:
    line: int  # its line in manifest.csv; the header is line 1
    value: str  # stripped


@dataclass(frozen=True)
class Row:
    file: str
    number: int  # the row's line in its file; the header is row 1
    values: list[str]


class Bundle:
    """A OneRoster bundle in a folder or a zip, at its root or one folder down."""

    def __init__(self, path: Path, limits: FileLimits | None = None) -> None:
        self.path = path
        self.limits = limits or FileLimits()
        self._zip: zipfile.ZipFile | None = None
        self._names: set[str]
        self._sizes: dict[str, int] = {}  # name → unpacked size, as declared (zip) or found
        # name → why it is never read (a symbolic link, not a regular file…)
        self.refused: dict[str, str] = {}
        self.manifest_name = MANIFEST  # as the bundle spells it (Manifest.csv…)
        if path.is_dir():
            self._names = self._list_folder()
        elif zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
                self._names = self._list_zip(self._zip)
            # NotImplementedError: an entry needs a later zip version than Python reads.
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                ValueError,
                NotImplementedError,
            ) as exc:
                self.close()
                raise BundleError(f"{path.name}: not a readable zip file ({exc})") from exc
            except BundleError:
                self.close()
                raise
        else:
            raise BundleError(f"{path.name}: neither a folder nor a zip file")
        try:
            self._prefix = self._find_root()
        except BundleError:
            self.close()
            raise

    def _list_folder(self) -> set[str]:
        """Files at the folder's root and one folder down; links and special files refused."""
        limits = self.limits
        names: set[str] = set()
        entries = 0
        total = 0
        folders = [("", self.path)]
        for depth in range(2):
            below: list[tuple[str, Path]] = []
            for prefix, folder in folders:
                with os.scandir(folder) as scan:
                    for entry in scan:
                        entries += 1
                        if entries > limits.max_bundle_entries:
                            raise BundleLimitError(
                                f"{self.path.name}: more than {limits.max_bundle_entries} files"
                                " and folders in its first two levels (max_bundle_entries);"
                                " not read"
                            )
                        name = prefix + entry.name
                        info = entry.stat(follow_symlinks=False)
                        if stat.S_ISDIR(info.st_mode):
                            if depth == 0:
                                below.append((name + "/", Path(entry.path)))
                            continue
                        names.add(name)
                        if stat.S_ISLNK(info.st_mode):
                            self.refused[name] = f"{name} is a symbolic link"
                        elif not stat.S_ISREG(info.st_mode):
                            self.refused[name] = f"{name} is not a regular file"
                        else:
                            self._sizes[name] = info.st_size
                            total += info.st_size
            folders = below
        self._check_total(total)
        return names

    def _list_zip(self, archive: zipfile.ZipFile) -> set[str]:
        """The zip's files, checked against the limits from its central directory."""
        limits = self.limits
        infos = archive.infolist()
        if len(infos) > limits.max_bundle_entries:
            raise BundleLimitError(
                f"{self.path.name}: {len(infos)} entries, more than {limits.max_bundle_entries}"
                " (max_bundle_entries); not read"
            )
        names: set[str] = set()
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            names.add(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                self.refused[info.filename] = f"{info.filename} is a symbolic link"
                continue
            self._sizes[info.filename] = info.file_size
            total += info.file_size
            packed = max(info.compress_size, 1)
            if info.file_size >= RATIO_FLOOR and info.file_size > limits.max_zip_ratio * packed:
                raise BundleLimitError(
                    f"{self.path.name}: {info.filename} would unpack from {human(packed)} to"
                    f" {human(info.file_size)}, {info.file_size / packed:.0f} times its size,"
                    f" more than max_zip_ratio ({limits.max_zip_ratio:g}); a zip bomb? not read"
                )
        self._check_total(total)
        return names

    def _check_total(self, total: int) -> None:
        if total > self.limits.max_bundle_bytes:
            raise BundleLimitError(
                f"{self.path.name}: its files come to {human(total)} unpacked, more than"
                f" max_bundle_bytes ({human(self.limits.max_bundle_bytes)}); not read"
            )

    def _find_root(self) -> str:
        """The folder of the manifest (its name in any case; ``manifest.csv`` itself first, then
        the shallowest); ``manifest_name`` is its name as the bundle spells it."""
        found = [
            name
            for name in self._names
            if name.count("/") <= 1 and name.rsplit("/", 1)[-1].lower() == MANIFEST
        ]
        if not found:
            raise BundleError(f"no {MANIFEST} at the bundle's root or one folder down")
        best = min(found, key=lambda n: (n.count("/"), not n.endswith(MANIFEST), n))
        self.manifest_name = best[-len(MANIFEST) :]
        return best[: -len(MANIFEST)]

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def files(self) -> list[str]:
        """The CSV files at the bundle's root, by name."""
        return sorted(
            n[len(self._prefix) :]
            for n in self._names
            if n.startswith(self._prefix)
            and "/" not in n[len(self._prefix) :]
            and n.endswith(".csv")
        )

    def exists(self, file_name: str) -> bool:
        return self._prefix + file_name in self._names

    def refusal(self, file_name: str) -> str | None:
        """Why a file of the bundle is never read (None: it can be)."""
        return self.refused.get(self._prefix + file_name)

    @contextmanager
    def _binary(self, file_name: str) -> Iterator[_Counted]:
        name = self._prefix + file_name
        reason = self.refused.get(name)
        if reason is not None:
            raise UnsafeFileError(f"{reason}; not read")
        declared = self._sizes.get(name, 0)
        if self._zip is not None:
            try:
                raw: IO[bytes] = self._zip.open(name)
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
                raise BundleError(f"{self.path.name}: {name} cannot be unpacked ({exc})") from exc
            except (NotImplementedError, RuntimeError) as exc:  # a method we lack, a password
                raise BundleError(f"{self.path.name}: {name} cannot be unpacked ({exc})") from exc
            except OSError as exc:  # offsets before the file's start: a negative seek (EINVAL)
                raise BundleError(f"{self.path.name}: {name} cannot be unpacked ({exc})") from exc
            # Never more than the central directory said (and checked) it holds.
            with raw, _Counted(raw, name, min(declared, self.limits.max_bundle_bytes)) as counted:
                yield counted
        else:
            with (
                _open_regular(self.path, name) as raw,
                _Counted(raw, name, self.limits.max_bundle_bytes) as counted,
            ):
                yield counted

    def encoding(self, file_name: str) -> Encoding:
        """UTF-8 (with or without BOM), else what the bytes most likely are, with the reason."""
        with self._binary(file_name) as raw:
            head = raw.read(4)
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                return Encoding("utf-16", "UTF-16 with BOM, not UTF-8")
            decoder = codecs.getincrementaldecoder("utf-8-sig")()
            offset = 0
            chunk = head
            while chunk:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    where = offset + exc.start
                    byte = chunk[exc.start : exc.start + 1].hex()
                    return Encoding(
                        "cp1252",
                        f"not UTF-8: byte 0x{byte} at offset {where}; read as Windows-1252",
                    )
                offset += len(chunk)
                chunk = raw.read(CHUNK)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return Encoding("cp1252", "not UTF-8: the file ends inside a character")
        return Encoding("utf-8-sig")

    @contextmanager
    def text(self, file_name: str, encoding: Encoding) -> Iterator[IO[str]]:
        # cp1252 leaves five bytes undefined: replace those rather than fail mid-file.
        errors = "strict" if encoding.name.startswith("utf-8") else "replace"
        with self._binary(file_name) as raw:
            yield io.TextIOWrapper(raw, encoding=encoding.name, errors=errors, newline="")

    def manifest(self) -> dict[str, str]:
        """``propertyName`` → ``value`` of manifest.csv (names and values stripped)."""
        return {name: entry.value for name, entry in self.manifest_entries().items()}

    def manifest_entries(self) -> dict[str, ManifestEntry]:
        """``propertyName`` → its value and line in manifest.csv (a name given twice: the last).

        A line with a name but no value field reads as a blank value. A manifest the limits cut
        is refused: the bundle cannot be read without all of it.
        """
        encoding = self.encoding(self.manifest_name)
        entries: dict[str, ManifestEntry] = {}
        with self.reading(self.manifest_name, encoding) as reading:
            for row in reading.rows():
                values = row.values
                if values[0].strip():
                    value = values[1].strip() if len(values) >= 2 else ""
                    entries[values[0].strip()] = ManifestEntry(row.number, value)
            if not reading.cuts.complete:
                cut = reading.cuts.cuts()[0]
                where = f":{cut.line}" if cut.line is not None else ""
                raise BundleLimitError(f"{MANIFEST}{where}: {cut.message}")
        return entries

    @contextmanager
    def reading(self, file_name: str, encoding: Encoding) -> Iterator[Reading]:
        """The file's header and rows, with what the limits cut from them."""
        with self.text(file_name, encoding) as handle:
            yield Reading(file_name, handle, self.limits)

    @contextmanager
    def reader(
        self, file_name: str, encoding: Encoding
    ) -> Iterator[tuple[list[str], Iterator[Row]]]:
        """The header and a stream of the data rows (blank lines and cut rows skipped)."""
        with self.reading(file_name, encoding) as reading:
            yield reading.header, reading.rows()


class Reading:
    """One pass over a CSV file, within the limits: the header, then the data rows.

    Rows longer than ``max_line_bytes`` or with more than ``max_columns`` fields are skipped,
    rows past ``max_rows_per_file`` are not read, and a header that passes a limit leaves the
    file unread; all of it is noted in ``cuts``. Blank rows are skipped.
    """

    def __init__(self, file_name: str, handle: IO[str], limits: FileLimits) -> None:
        self.file = file_name
        self._limits = limits
        self._lines = Lines(handle, limits.max_line_bytes)
        self._reader = csv.reader(self._lines)
        self.cuts = FileCuts(
            file=file_name,
            limit_line_bytes=limits.max_line_bytes,
            limit_columns=limits.max_columns,
            limit_rows=limits.max_rows_per_file,
        )
        self.header = self._header()

    def _header(self) -> list[str]:
        self._lines.new_row()
        try:
            header = next(self._reader, [])
        except LineTooLong as cut:
            self.cuts.header = Cut(
                LINE_TOO_LONG,
                f"the header is longer than {self._limits.max_line_bytes} bytes"
                " (max_line_bytes); the file is not read",
                cut.first,
            )
            return []
        if len(header) > self._limits.max_columns:
            self.cuts.header = Cut(
                TOO_MANY_COLUMNS,
                f"the header has {len(header)} columns, more than {self._limits.max_columns}"
                " (max_columns); the file is not read",
                self._lines.number,
            )
            return []
        return header

    def rows(self) -> Iterator[Row]:
        if self.cuts.header is not None:
            return
        lines, reader, cuts = self._lines, self._reader, self.cuts
        max_columns, max_rows = self._limits.max_columns, self._limits.max_rows_per_file
        count = 0
        while True:
            lines.new_row()
            try:
                values = next(reader)
            except StopIteration:
                return
            except LineTooLong as cut:
                cuts.long(cut.first, cut.last)
                continue
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) > max_columns:
                cuts.wide(lines.number, len(values))
                continue
            count += 1
            if count > max_rows:
                cuts.rows_cut_at = lines.row_start
                return
            yield Row(file=self.file, number=lines.number, values=values)


class _Counted(io.BufferedIOBase):
    """A member's bytes, counted as they are read: past ``limit`` the read fails; a damaged zip
    is a ``BundleError`` (not zipfile's own errors, which no caller expects)."""

    def __init__(self, raw: IO[bytes], name: str, limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self._limit = limit
        self._member = isinstance(raw, zipfile.ZipExtFile)
        self.count = 0

    @property
    def name(self) -> str:
        return self._name

    def readable(self) -> bool:
        return True

    def _counted(self, data: bytes) -> bytes:
        self.count += len(data)
        if self.count > self._limit:
            raise BundleLimitError(
                f"{self._name}: more than {human(self._limit)} read, more than it declared"
                " or than max_bundle_bytes allows; not read further"
            )
        return data

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._counted(self._raw.read(-1 if size is None else size))
        except UNPACK_ERRORS as exc:
            raise self._damaged(exc) from exc
        except OSError as exc:
            if not self._member:
                raise  # a folder's file that cannot be read: the OSError it is
            raise self._damaged(exc) from exc  # bzip2 says a member is damaged with an OSError

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._raw, "read1", None)
        if read1 is None:
            return self.read(size)
        try:
            return self._counted(read1(size))
        except UNPACK_ERRORS as exc:
            raise self._damaged(exc) from exc
        except OSError as exc:
            if not self._member:
                raise
            raise self._damaged(exc) from exc

    def _damaged(self, exc: Exception) -> BundleError:
        return BundleError(f"{self._name}: the zip is damaged ({exc})")


@contextmanager
def _open_regular(folder: Path, name: str) -> Iterator[IO[bytes]]:
    """A file of a bundle folder, opened only if it is a regular file (never through a link)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(folder / name, flags)
    except OSError as exc:
        if exc.errno == getattr(os, "ELOOP", -1) or (folder / name).is_symlink():
            raise UnsafeFileError(f"{name} is a symbolic link; not read") from exc
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(f"{name} is not a regular file; not read")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle
