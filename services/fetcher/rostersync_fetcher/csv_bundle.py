"""Reading a OneRoster CSV bundle (a folder or a .zip), one row at a time.

Rows are streamed: memory stays flat whatever the size of a file.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MANIFEST = "manifest.csv"


class BundleError(Exception):
    """The bundle cannot be read at all (no manifest, unreadable zip...)."""


@dataclass(frozen=True)
class Row:
    file: str
    number: int  # 1-based line of the data row in its file; the header is row 1
    values: dict[str, str]


class Bundle:
    """A OneRoster bundle in a folder or a zip, at its root or one folder down."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if path.is_dir():
            self._prefix = self._find_root(
                [p.relative_to(path).as_posix() for p in path.rglob("*")]
            )
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self._prefix = self._find_root(self._zip.namelist())
        else:
            raise BundleError(f"{path}: neither a folder nor a zip file")

    @staticmethod
    def _find_root(names: list[str]) -> str:
        for name in sorted(names, key=lambda n: n.count("/")):
            if name.rsplit("/", 1)[-1] == MANIFEST and name.count("/") <= 1:
                return name[: -len(MANIFEST)]
        raise BundleError(f"no {MANIFEST} at the bundle's root or one folder down")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def exists(self, file_name: str) -> bool:
        name = self._prefix + file_name
        if self._zip is not None:
            return name in self._zip.namelist()
        return (self.path / name).is_file()

    @contextmanager
    def _open(self, file_name: str) -> Iterator[IO[str]]:
        name = self._prefix + file_name
        if self._zip is not None:
            with self._zip.open(name) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        else:
            with (self.path / name).open(encoding="utf-8-sig", newline="") as handle:
                yield handle

    def manifest(self) -> dict[str, str]:
        """``propertyName`` → ``value`` of manifest.csv."""
        return {
            row.values.get("propertyName", ""): row.values.get("value", "")
            for row in self.rows(MANIFEST)
        }

    def rows(self, file_name: str) -> Iterator[Row]:
        """The data rows of one file as dicts keyed by header, streamed."""
        with self._open(file_name) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            for number, values in enumerate(reader, start=2):
                if not values:
                    continue
                yield Row(
                    file=file_name, number=number, values=dict(zip(header, values, strict=False))
                )
