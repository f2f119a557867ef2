"""Reading a OneRoster CSV bundle (a folder or a .zip), one row at a time.

Rows are streamed: memory stays flat whatever the size of a file. Files are UTF-8 (a BOM is
tolerated, as the spec requires); a file in another encoding is detected, read as what it most
likely is, and reported.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MANIFEST = "manifest.csv"
CHUNK = 1 << 20

# Real files carry fields longer than the csv module's default limit (128 KiB) only when broken,
# but a long list of sourcedIds can pass it: allow 16 MiB, still bounded.
csv.field_size_limit(16 << 20)


class BundleError(Exception):
    """The bundle cannot be read at all (no manifest, unreadable zip...)."""


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

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._names: set[str]
        if path.is_dir():
            self._names = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self._names = set(self._zip.namelist())
        else:
            raise BundleError(f"{path.name}: neither a folder nor a zip file")
        self._prefix = self._find_root()

    def _find_root(self) -> str:
        for name in sorted(self._names, key=lambda n: n.count("/")):
            if name.rsplit("/", 1)[-1].lower() == MANIFEST and name.count("/") <= 1:
                return name[: -len(MANIFEST)]
        raise BundleError(f"no {MANIFEST} at the bundle's root or one folder down")

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

    @contextmanager
    def _binary(self, file_name: str) -> Iterator[IO[bytes]]:
        name = self._prefix + file_name
        if self._zip is not None:
            with self._zip.open(name) as raw:
                yield raw
        else:
            with (self.path / name).open("rb") as raw:
                yield raw

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

        A line with a name but no value field reads as a blank value.
        """
        encoding = self.encoding(MANIFEST)
        entries: dict[str, ManifestEntry] = {}
        with self.text(MANIFEST, encoding) as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                if row and row[0].strip():
                    value = row[1].strip() if len(row) >= 2 else ""
                    entries[row[0].strip()] = ManifestEntry(reader.line_num, value)
        return entries

    @contextmanager
    def reader(
        self, file_name: str, encoding: Encoding
    ) -> Iterator[tuple[list[str], Iterator[Row]]]:
        """The header and a stream of the data rows (blank lines skipped)."""
        with self.text(file_name, encoding) as handle:
            reader = csv.reader(handle)
            header = next(reader, [])

            def rows() -> Iterator[Row]:
                for values in reader:
                    if values and any(v.strip() for v in values):
                        yield Row(file=file_name, number=reader.line_num, values=values)

            yield header, rows()
