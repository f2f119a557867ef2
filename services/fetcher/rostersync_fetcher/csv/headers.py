"""Matching a file's header to the specification's columns.

Columns are found by name, not position, so a scrambled header still reads correctly; a name that
differs only in case is matched (and reported). ``metadata.*`` extension columns are kept as they
are; any other unknown column is left out of the record and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from rostersync_libs.oneroster.columns import DROPPED_COLUMNS, FileSpec

METADATA_PREFIX = "metadata."


@dataclass(frozen=True)
class HeaderMap:
    """Position → canonical column name for the columns a record keeps."""

    positions: tuple[tuple[int, str], ...]
    width: int

    @classmethod
    def build(cls, header: list[str], spec: FileSpec) -> HeaderMap:
        by_lower = {name.lower(): name for name in spec.names}
        seen: set[str] = set()
        positions: list[tuple[int, str]] = []
        for index, raw in enumerate(header):
            name = raw.strip()
            canonical = by_lower.get(name.lower())
            if canonical is None and name.lower().startswith(METADATA_PREFIX):
                canonical = name
            if canonical is None or canonical in seen or canonical in DROPPED_COLUMNS:
                continue  # unknown, duplicate or secret: reported by the validator, never copied
            seen.add(canonical)
            positions.append((index, canonical))
        return cls(tuple(positions), len(header))

    def values(self, row: list[str]) -> dict[str, str]:
        """The row's values by canonical column name (missing trailing fields read as blank)."""
        width = len(row)
        return {name: row[index] if index < width else "" for index, name in self.positions}
