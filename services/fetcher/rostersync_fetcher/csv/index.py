"""A first pass over the bundle: which sourcedIds each file holds, so references can be checked.

Only ids are kept (no records), and only for files other records point at or that are small
(enrollments, the largest file by far, is never indexed): memory grows with the number of users,
not with the size of the bundle. Ids are kept as 8-byte hashes in one sorted array, not as a set
of strings: a million-student district has ~1.7M users and 1M demographics, which as Python
strings in sets took ~320 MB of the fetcher; as hashes they take ~22 MB. Two ids sharing a 64-bit
hash (odds ~1e-7 per bundle) would only hide one dangling-reference finding.
"""

from __future__ import annotations

import csv
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

from rostersync_libs.events import EntityType
from rostersync_libs.oneroster.bundle import Bundle, Encoding

# Files whose ids are collected: every reference target, plus the files small enough to check
# for duplicate sourcedIds here.
INDEXED = frozenset(EntityType) - {EntityType.ENROLLMENT}


class IdSet:
    """A set of ids as sorted 64-bit hashes: filled with ``add``, then ``freeze`` before use."""

    def __init__(self) -> None:
        self._hashes = array("q")
        self._duplicates: set[int] = set()

    def add(self, sourced_id: str) -> None:
        self._hashes.append(hash(sourced_id))  # per-process hashes: the index never leaves it

    def freeze(self) -> None:
        self._hashes = array("q", sorted(self._hashes))
        hashes = self._hashes
        self._duplicates = {hashes[i] for i in range(1, len(hashes)) if hashes[i] == hashes[i - 1]}

    def __contains__(self, sourced_id: object) -> bool:
        h = hash(sourced_id)
        i = bisect_left(self._hashes, h)
        return i < len(self._hashes) and self._hashes[i] == h

    def is_duplicate(self, sourced_id: str) -> bool:
        return hash(sourced_id) in self._duplicates

    def __len__(self) -> int:
        return len(self._hashes)


@dataclass
class FileIndex:
    mode: str
    ids: IdSet = field(default_factory=IdSet)
    parents: dict[str, str] = field(default_factory=dict)  # orgs only


@dataclass
class BundleIndex:
    files: dict[EntityType, FileIndex] = field(default_factory=dict)
    cyclic_orgs: set[str] = field(default_factory=set)

    def has_file(self, entity: EntityType) -> bool:
        return entity in self.files

    def is_bulk(self, entity: EntityType) -> bool:
        index = self.files.get(entity)
        return index is not None and index.mode == "bulk"

    def contains(self, entity: EntityType, sourced_id: str) -> bool:
        index = self.files.get(entity)
        return index is not None and sourced_id in index.ids

    def is_duplicate(self, entity: EntityType, sourced_id: str) -> bool:
        index = self.files.get(entity)
        return index is not None and index.ids.is_duplicate(sourced_id)


def _position(header: list[str], name: str) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return lowered.index(name.lower()) if name.lower() in lowered else None


def index_file(
    bundle: Bundle, file_name: str, entity: EntityType, mode: str, encoding: Encoding
) -> FileIndex:
    index = FileIndex(mode=mode)
    try:
        with bundle.reader(file_name, encoding) as (header, rows):
            id_at = _position(header, "sourcedId")
            parent_at = _position(header, "parentSourcedId") if entity is EntityType.ORG else None
            if id_at is None:
                return index
            for row in rows:
                values = row.values
                sourced_id = values[id_at].strip() if id_at < len(values) else ""
                index.ids.add(sourced_id)
                if parent_at is not None and parent_at < len(values) and values[parent_at].strip():
                    index.parents[sourced_id] = values[parent_at].strip()
    except csv.Error:
        pass  # the publishing pass meets the same error and reports it with its line
    index.ids.freeze()
    return index


def filled_columns(
    bundle: Bundle, file_name: str, encoding: Encoding, columns: set[str]
) -> set[str]:
    """Which of ``columns`` (found by name, in any case) hold a value on at least one row.

    Reads only until each has shown one, so a column filled on the first row costs one row.
    """
    filled: set[str] = set()
    try:
        with bundle.reader(file_name, encoding) as (header, rows):
            positions = {
                name: at for name in columns if (at := _position(header, name)) is not None
            }
            if not positions:
                return filled
            for row in rows:
                values = row.values
                for name, at in positions.items():
                    if name not in filled and at < len(values) and values[at].strip():
                        filled.add(name)
                if len(filled) == len(positions):
                    break
    except csv.Error:
        pass  # the publishing pass meets the same error and reports it with its line
    return filled


def find_cycles(parents: dict[str, str]) -> set[str]:
    """Every id whose parent chain loops (the loop's members and what hangs below it)."""
    cyclic: set[str] = set()
    settled: set[str] = set()
    for start in parents:
        path: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node not in settled and node not in on_path:
            path.append(node)
            on_path.add(node)
            node = parents.get(node)
        if node is not None and (node in on_path or node in cyclic):
            cyclic.update(path)
        settled.update(path)
    return cyclic
