"""The roster the server serves: every CSV row of a bundle, in memory, and the ways to change it.

A test and demo tool: the whole bundle is held in memory. Rows are kept as the CSV has them
(column name → text); the JSON shapes are made from them on request (``json_shapes``).
Every change stamps ``dateLastModified`` with a clock that never repeats and never goes back
(millisecond precision), so a client's ``dateLastModified>'…'`` high-water mark sees it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rostersync_libs.oneroster.bundle import Bundle

# Files the server reads, by the entity name used everywhere in its API (the CSV file's stem).
ENTITIES = (
    "orgs",
    "academicSessions",
    "courses",
    "classes",
    "users",
    "enrollments",
    "demographics",
    "roles",
    "userProfiles",
)
# A change to one of these changes the served user (1.2 roles[]/userProfiles[], 1.1 orgs/role).
USER_PARTS = ("roles", "userProfiles")


def iso_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2024-05-01T12:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class Clock:
    """Now, to the millisecond, strictly later than anything it returned before."""

    def __init__(self) -> None:
        self._last: datetime | None = None

    def now(self) -> datetime:
        moment = datetime.now(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if self._last is not None and moment <= self._last:
            moment = self._last + timedelta(milliseconds=1)
        self._last = moment
        return moment


@dataclass
class Record:
    """One row: its CSV values, and the status and dateLastModified the server serves."""

    row: dict[str, str]
    status: str
    date_last_modified: str

    @property
    def sourced_id(self) -> str:
        return self.row["sourcedId"]


class UnknownEntityError(KeyError):
    pass


class UnknownRecordError(KeyError):
    pass


def read_bundle(path: Path) -> tuple[str, dict[str, list[dict[str, str]]]]:
    """The OneRoster version of a bundle (folder or zip) and its rows per entity."""
    bundle = Bundle(path)
    try:
        version = bundle.manifest().get("oneroster.version", "1.1") or "1.1"
        rows: dict[str, list[dict[str, str]]] = {}
        for entity in ENTITIES:
            name = f"{entity}.csv"
            if not bundle.exists(name):
                continue
            with bundle.reader(name, bundle.encoding(name)) as (header, stream):
                names = [h.strip() for h in header]
                rows[entity] = [
                    {k: v.strip() for k, v in zip(names, row.values, strict=False)}
                    for row in stream
                ]
        return version, rows
    finally:
        bundle.close()


class RosterData:
    """Every record of the bundle, by entity and sourcedId, and the mutations tests need."""

    def __init__(self, bundle: Path | None) -> None:
        """``bundle`` None: no records (a server serving given JSON collections, server.py)."""
        self.clock = Clock()
        self.loaded_at = iso_ms(self.clock.now())
        self.version, rows = read_bundle(bundle) if bundle is not None else ("1.1", {})
        self._records: dict[str, dict[str, Record]] = {e: {} for e in ENTITIES}
        self._order: dict[str, list[str]] = {}
        self.generation = 0  # bumped by every change: caches keyed on it stay right
        for entity, entity_rows in rows.items():
            for row in entity_rows:
                if row.get("sourcedId"):
                    self._records[entity][row["sourcedId"]] = Record(
                        _strip_head(row),
                        _status(row.get("status", "")),
                        row.get("dateLastModified") or self.loaded_at,
                    )
        self._reindex()

    @property
    def is_1_2(self) -> bool:
        return self.version.startswith("1.2")

    # --- reading -------------------------------------------------------------------------
    def records(self, entity: str) -> dict[str, Record]:
        if entity not in self._records:
            raise UnknownEntityError(entity)
        return self._records[entity]

    def get(self, entity: str, sourced_id: str) -> Record | None:
        return self.records(entity).get(sourced_id)

    def ordered(self, entity: str) -> list[Record]:
        """The records of an entity by sourcedId: a stable order for offset paging."""
        records = self.records(entity)
        if entity not in self._order:
            self._order[entity] = sorted(records)
        return [records[k] for k in self._order[entity]]

    def roles_of(self, user_id: str) -> list[Record]:
        return self._by_user["roles"].get(user_id, [])

    def profiles_of(self, user_id: str) -> list[Record]:
        return self._by_user["userProfiles"].get(user_id, [])

    def children_of(self, entity: str, parent_id: str) -> list[str]:
        return self._children[entity].get(parent_id, [])

    # --- changing ------------------------------------------------------------------------
    def upsert(self, entity: str, row: Mapping[str, str], status: str = "active") -> Record:
        """Add or replace one record (a whole CSV row); it is stamped now."""
        stamp = iso_ms(self.clock.now())
        record = self._put(entity, dict(row), _status(status), stamp)
        self._changed([entity])
        return record

    def touch(self, entity: str, sourced_id: str) -> str:
        """Bump the record's dateLastModified to now; returns the new value."""
        record = self._existing(entity, sourced_id)
        record.date_last_modified = iso_ms(self.clock.now())
        self._touch_owner(entity, record, record.date_last_modified)
        self._changed([entity])
        return record.date_last_modified

    def mark_deleted(self, entity: str, sourced_id: str) -> str:
        """Set status ``tobedeleted`` (still served) and dateLastModified to now."""
        record = self._existing(entity, sourced_id)
        record.status = "tobedeleted"
        record.date_last_modified = iso_ms(self.clock.now())
        self._touch_owner(entity, record, record.date_last_modified)
        self._changed([entity])
        return record.date_last_modified

    def hard_delete(self, entity: str, sourced_id: str) -> None:
        """Remove the record: it is no longer served at all (no cascade to its references)."""
        record = self._existing(entity, sourced_id)
        del self._records[entity][sourced_id]
        self._touch_owner(entity, record, iso_ms(self.clock.now()))
        self._changed([entity])

    def apply_delta_bundle(self, path: Path) -> dict[str, int]:
        """Upsert every row of another bundle; ``tobedeleted`` rows stay, with that status.

        All rows of one call share one new dateLastModified (later than any before). Files the
        manifest calls ``bulk`` are upserted too: nothing absent from them is removed.
        """
        _, rows = read_bundle(path)
        stamp = iso_ms(self.clock.now())
        counts: dict[str, int] = {}
        for entity, entity_rows in rows.items():
            for row in entity_rows:
                if row.get("sourcedId"):
                    self._put(entity, row, _status(row.get("status", "")), stamp)
            counts[entity] = len(entity_rows)
        self._changed([e for e, n in counts.items() if n])
        return counts

    # --- internals -----------------------------------------------------------------------
    def _existing(self, entity: str, sourced_id: str) -> Record:
        record = self.records(entity).get(sourced_id)
        if record is None:
            raise UnknownRecordError(f"{entity}/{sourced_id}")
        return record

    def _put(self, entity: str, row: dict[str, str], status: str, stamp: str) -> Record:
        records = self.records(entity)
        record = Record(_strip_head(row), status, stamp)
        old = records.get(record.sourced_id)
        records[record.sourced_id] = record
        if old is not None:
            self._touch_owner(entity, old, stamp)
        self._touch_owner(entity, record, stamp)
        return record

    def _touch_owner(self, entity: str, record: Record, stamp: str) -> None:
        """A change to a role or profile changes the user it belongs to."""
        if entity in USER_PARTS:
            user = self._records["users"].get(record.row.get("userSourcedId", ""))
            if user is not None:
                user.date_last_modified = stamp

    def _changed(self, changed: Iterable[str]) -> None:
        entities = list(changed)
        for entity in entities:
            self._order.pop(entity, None)
        self.generation += 1
        if set(entities) & {*USER_PARTS, "orgs", "academicSessions"}:
            self._reindex()

    def _reindex(self) -> None:
        self._by_user: dict[str, dict[str, list[Record]]] = {}
        for entity in USER_PARTS:
            index: dict[str, list[Record]] = {}
            for key in sorted(self._records[entity]):
                record = self._records[entity][key]
                index.setdefault(record.row.get("userSourcedId", ""), []).append(record)
            self._by_user[entity] = index
        self._children: dict[str, dict[str, list[str]]] = {}
        for entity in ("orgs", "academicSessions"):
            children: dict[str, list[str]] = {}
            for key in sorted(self._records[entity]):
                parent = self._records[entity][key].row.get("parentSourcedId", "")
                if parent:
                    children.setdefault(parent, []).append(key)
            self._children[entity] = children


def _strip_head(row: Mapping[str, str]) -> dict[str, str]:
    """The row without status and dateLastModified: the record holds those."""
    return {k: v for k, v in row.items() if k not in ("status", "dateLastModified")}


def _status(value: str) -> str:
    """Blank (bulk) → active; ``inactive`` (1.0) → tobedeleted, as the spec says."""
    value = value.strip()
    return "tobedeleted" if value in ("tobedeleted", "inactive") else "active"


def write_bundle(folder: Path, files: Mapping[str, list[dict[str, str]]], version: str) -> Path:
    """Write a small delta bundle (for tests and demos): ``{"users": [row, …], …}``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["propertyName", "value"])
        out.writerow(["manifest.version", "1.0"])
        out.writerow(["oneroster.version", version])
        for entity in ENTITIES:
            out.writerow([f"file.{entity}", "delta" if entity in files else "absent"])
    for entity, rows in files.items():
        names: list[str] = ["sourcedId", "status", "dateLastModified"]
        for row in rows:
            names += [k for k in row if k not in names]
        with (folder / f"{entity}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names, restval="")
            writer.writeheader()
            writer.writerows(rows)
    return folder
