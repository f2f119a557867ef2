"""Limits on what is read of a CSV bundle: lines, rows and columns of a file, unpacked bytes.

A limit is applied *while* reading, before the data is held in memory: a line is read at most
``max_line_bytes`` (+2) characters at a time, so a 2 GiB line costs one chunk, not 2 GiB. What a
limit cuts from a file is a :class:`Cut`, reported to the validator as the file's
``FileFacts.parse_error`` in the form ``[code] line N: message`` (the validator's ``files.py``
turns it into a finding with that code and line); a limit the whole bundle passes (unpacked size,
a zip member's compression ratio) fails the run (``BundleLimitError``, a ``BundleError``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from rostersync_libs.finding_codes import Code

log = logging.getLogger(__name__)

QUOTE = '"'
SKIP_CHUNK = 1 << 20  # characters read at a time while skipping the rest of a long line
LISTED_LINES = 10  # line numbers named in a finding (the count says how many in all)

# Codes of what a limit cuts from a file (finding_codes.py gives their severity).
LINE_TOO_LONG = Code.LINE_TOO_LONG
TOO_MANY_COLUMNS = Code.TOO_MANY_COLUMNS
TOO_MANY_ROWS = Code.TOO_MANY_ROWS
UNSAFE_FILE = Code.UNSAFE_FILE


@dataclass(frozen=True)
class Cut:
    """What a limit left out of one file."""

    code: Code
    message: str
    line: int | None = None  # the (first) line concerned; None: the whole file

    def fact(self) -> str:
        """As ``FileFacts.parse_error``: ``[code] line N: message`` (``[code]: message``)."""
        where = f" line {self.line}" if self.line is not None else ""
        return f"[{self.code}]{where}: {self.message}"


class LineTooLong(Exception):  # noqa: N818 (a signal between two iterators, not a failure)
    """A line (or a quoted row spanning lines) passed ``max_line_bytes``; it has been skipped."""

    def __init__(self, first: int, last: int) -> None:
        super().__init__(f"lines {first}-{last}")
        self.first = first
        self.last = last


def _size(text: str) -> int:
    """UTF-8 bytes of ``text`` (its length when ASCII, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _ending(line: str) -> int:
    """Length of the line ending (``\\r\\n``, ``\\n``, ``\\r`` or none)."""
    if line.endswith("\r\n"):
        return 2
    return 1 if line.endswith(("\n", "\r")) else 0


class Lines:
    """The physical lines of a text stream for ``csv.reader``, none held longer than ``limit``.

    Call :meth:`new_row` before asking the csv reader for a row: a row longer than the limit
    (one line, or several inside quotes) raises :class:`LineTooLong` out of the reader after the
    rest of it has been skipped (read in chunks, never kept), and the reader goes on with the
    next row. ``number`` counts physical lines, skipped ones included (a row's number is the
    line it ends on, as ``csv.reader.line_num`` would say without skips).
    """

    def __init__(self, text: IO[str], limit: int) -> None:
        self._text = text
        self._readline = text.readline
        self._limit = limit
        self._cap = limit + 2  # characters read at most at a time: the limit and a \r\n
        self.number = 0
        self._row_start = 1
        self._row_bytes = 0
        self._row_quotes = 0
        self._drop_lf = False  # a skip ended on the \r of a \r\n split by the size cap

    def new_row(self) -> None:
        self._row_start = self.number + 1
        self._row_bytes = 0
        self._row_quotes = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._readline(self._cap)
        if self._drop_lf:
            self._drop_lf = False
            if line == "\n":
                line = self._readline(self._cap)
        if not line:
            raise StopIteration
        self.number += 1
        self._row_bytes += len(line) if line.isascii() else _size(line)
        if self._row_bytes > self._limit:  # the line ending is not counted: look closer
            ending = _ending(line)
            if self._row_bytes - ending > self._limit or (not ending and len(line) > self._limit):
                self._skip_rest(line, ending)
                raise LineTooLong(self._row_start, self.number)
        self._row_quotes += line.count(QUOTE)
        return line

    @property
    def row_start(self) -> int:
        """The line the row being read starts on."""
        return self._row_start

    def _skip_rest(self, piece: str, ending: int) -> None:
        """Read past the end of the row ``piece`` belongs to: a line ending outside quotes."""
        quotes = self._row_quotes + piece.count(QUOTE)
        while not (ending and quotes % 2 == 0):
            next_piece = self._readline(SKIP_CHUNK)
            if not next_piece:
                return
            if ending:  # the previous piece ended its line: this one starts the next
                self.number += 1
            piece = next_piece
            ending = _ending(piece)
            quotes += piece.count(QUOTE)
        self._drop_lf = piece.endswith("\r")


@dataclass
class FileCuts:
    """What the limits cut from one reading of a file."""

    file: str
    limit_line_bytes: int
    limit_columns: int
    limit_rows: int
    header: Cut | None = None  # the header itself: the file is not read
    long_rows: list[tuple[int, int]] = field(default_factory=list)  # (first, last) line
    long_count: int = 0
    wide_rows: list[tuple[int, int]] = field(default_factory=list)  # (line, fields)
    wide_count: int = 0
    rows_cut_at: int | None = None  # the first line not read

    def long(self, first: int, last: int) -> None:
        self.long_count += 1
        if len(self.long_rows) < LISTED_LINES:
            self.long_rows.append((first, last))

    def wide(self, line: int, fields: int) -> None:
        self.wide_count += 1
        if len(self.wide_rows) < LISTED_LINES:
            self.wide_rows.append((line, fields))

    @property
    def complete(self) -> bool:
        """Every row of the file was read (nothing cut)."""
        return not self.cuts()

    def cuts(self) -> list[Cut]:
        found: list[Cut] = []
        if self.header is not None:
            found.append(self.header)
        if self.long_count:
            first, last = self.long_rows[0]
            where = f"line {first}" if first == last else f"the row on lines {first}-{last}"
            found.append(
                Cut(
                    LINE_TOO_LONG,
                    f"{where} is longer than {self.limit_line_bytes} bytes (max_line_bytes);"
                    f" it is not read{_more(self.long_count, [a for a, _ in self.long_rows])}",
                    first,
                )
            )
        if self.wide_count:
            line, fields = self.wide_rows[0]
            found.append(
                Cut(
                    TOO_MANY_COLUMNS,
                    f"line {line} has {fields} fields, more than {self.limit_columns}"
                    f" (max_columns); it is not read"
                    f"{_more(self.wide_count, [a for a, _ in self.wide_rows])}",
                    line,
                )
            )
        if self.rows_cut_at is not None:
            found.append(
                Cut(
                    TOO_MANY_ROWS,
                    f"more than {self.limit_rows} data rows (max_rows_per_file): rows from"
                    f" line {self.rows_cut_at} on are not read",
                    self.rows_cut_at,
                )
            )
        return found


def _more(count: int, lines: list[int]) -> str:
    if count == 1:
        return ""
    listed = ", ".join(str(n) for n in lines)
    tail = ", …" if count > len(lines) else ""
    return f" ({count} rows in all: lines {listed}{tail})"


def human(size: float) -> str:
    """``1.5 GiB``, ``12 MiB``, ``900 bytes``."""
    for unit, step in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= step:
            return f"{size / step:.1f} {unit}".replace(".0 ", " ")
    return f"{int(size)} bytes"
