"""Record-level checks: required values, value types, bulk/delta rules, and bundle facts.

NUL characters (``\\x00``: in a CSV cell, or a JSON string's ``\\u0000``) are removed first, each
reported (``nul_character``, a warning: the value is kept without them), so every other check
reads the value as it will be stored; PostgreSQL text cannot hold them. Identifiers are never
changed: the record's own sourcedId is its key (partition, internal id), and the fetcher resolved
references as the bundle wrote them (the id without its NUL may be another record's). A NUL in
sourcedId or a reference column rejects the record (``nul_character_in_id``).
"""

from __future__ import annotations

from typing import Any

from rostersync_libs.events import Operation, RecordEvent
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, clip
from rostersync_libs.oneroster.columns import spec_for

from rostersync_validator.values import check_value

NUL = "\x00"
DELETE_STATUSES = frozenset({"tobedeleted", "inactive"})


def without_nul(value: str) -> str:
    return value.replace(NUL, "")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, list):
        return any(isinstance(v, str) and NUL in v for v in value)
    return False


class RecordCheck:
    """Checks one record; ``payload`` holds the corrections the profile allows."""

    def __init__(self, event: RecordEvent, profile: str) -> None:
        self.event = event
        self.profile = profile
        self.version = event.oneroster_version or "1.1"
        self.spec = spec_for(self.version, event.entity)
        self.payload: dict[str, Any] = dict(event.payload)
        self.operation = event.operation
        self.findings: list[Finding] = []

    def add(
        self,
        code: Code,
        message: str,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        origin = self.event.origin
        self.findings.append(
            Finding(
                code=code,
                severity=code.severity(self.profile),
                message=message,
                file=origin.file if origin else None,
                row=origin.row if origin else None,
                column=column,
                value=value,
            )
        )

    def run(self) -> None:
        self._nul_characters()
        self._status_rules()
        if self.operation is Operation.UPSERT:
            self._required()
        self._values()
        self._cardinality()

    def _nul_characters(self) -> None:
        """NUL characters removed from every value and column name, each reported."""
        if not any(NUL in name or _has_nul(raw) for name, raw in self.payload.items()):
            return
        cleaned: dict[str, Any] = {}
        for name, raw in self.payload.items():
            column = without_nul(name)
            if column != name:
                self._nul_found(column, name, "the column name")
            if column in self._identifiers and _has_nul(raw):
                for found in raw if isinstance(raw, list) else [raw]:
                    if isinstance(found, str) and NUL in found:
                        self._nul_in_id(column, found)
                cleaned[column] = raw
                continue
            # What is left is read as both readers read values: stripped, blanks left out.
            if isinstance(raw, str) and NUL in raw:
                self._nul_found(column, raw, "the value")
                raw = without_nul(raw).strip()
                if not raw:
                    continue
            elif _has_nul(raw):
                items = []
                for item in raw:
                    if isinstance(item, str) and NUL in item:
                        self._nul_found(column, item, "the value")
                        item = without_nul(item).strip()
                        if not item:
                            continue
                    items.append(item)
                if not items:
                    continue
                raw = items
            cleaned[column] = raw
        status = cleaned.get("status")
        if status != self.payload.get("status") and isinstance(status, str):
            # The fetcher read the operation from the status with its NUL: read it again.
            gone = status.lower() in DELETE_STATUSES
            self.operation = Operation.DELETE if gone else Operation.UPSERT
        self.payload = cleaned

    @property
    def _identifiers(self) -> set[str]:
        return {"sourcedId", *(c.name for c in self.spec.references)}

    def _nul_in_id(self, column: str, found: str) -> None:
        self.add(
            Code.NUL_CHARACTER_IN_ID,
            f"{clip(repr(found), 120)} holds a NUL character: expected a sourcedId without NUL"
            " characters; an identifier is never changed (without its NUL it may be another"
            " record's), so the record is rejected",
            column,
            found,
        )

    def _nul_found(self, column: str, found: str, what: str) -> None:
        count = found.count(NUL)
        self.add(
            Code.NUL_CHARACTER,
            f"{what} {clip(repr(found), 120)} holds {count} NUL character{'s' * (count > 1)}:"
            " expected a value without NUL characters; the NUL was removed",
            column,
            found,
        )

    def _required(self) -> None:
        for column in self.spec.columns:
            if column.required and column.name not in self.payload:
                self.add(
                    Code.MISSING_REQUIRED_DATA,
                    f"{self.spec.file_name} requires a value in {column.name}",
                    column.name,
                )

    def _values(self) -> None:
        for column in self.spec.columns:
            raw = self.payload.get(column.name)
            if raw is None or column.name == "status":
                continue
            values = raw if isinstance(raw, list) else [raw]
            corrected = []
            for value in values:
                fixed, code, message = check_value(value, column, self.version)
                if code is not None:
                    self.add(code, message, column.name, value)
                corrected.append(fixed if fixed is not None else value)
            self.payload[column.name] = corrected if isinstance(raw, list) else corrected[0]

    def _status_rules(self) -> None:
        status = self.payload.get("status")
        modified = self.payload.get("dateLastModified")
        if self.event.mode == "bulk":
            if status or modified:
                self.add(
                    Code.BULK_STATUS_FILLED,
                    "status and dateLastModified must be blank in a bulk file",
                    "status" if status else "dateLastModified",
                    status or modified,
                )
            return
        if status is None:
            self.add(
                Code.DELTA_STATUS_MISSING,
                "a delta file needs status (active or tobedeleted); read as active",
                "status",
            )
        elif status.lower() == "inactive":
            self.add(
                Code.LEGACY_INACTIVE_STATUS,
                "'inactive' was removed in OneRoster 1.1; read as tobedeleted",
                "status",
                status,
            )
            self.payload["status"] = "tobedeleted"
            self.operation = Operation.DELETE
        elif status not in ("active", "tobedeleted"):
            fixed = status.lower()
            if fixed in ("active", "tobedeleted"):
                self.add(
                    Code.ENUMERATION_CASE, f"{status!r} must be written {fixed!r}", "status", status
                )
                self.payload["status"] = fixed
            else:
                self.add(
                    Code.INVALID_ENUMERATION,
                    f"{status!r} is not one of active, tobedeleted",
                    "status",
                    status,
                )
        if modified is None:
            self.add(
                Code.DELTA_DATE_MISSING, "a delta file needs dateLastModified", "dateLastModified"
            )

    def _cardinality(self) -> None:
        subjects, codes = self.payload.get("subjects"), self.payload.get("subjectCodes")
        if isinstance(subjects, list) and isinstance(codes, list) and len(subjects) != len(codes):
            self.add(
                Code.LIST_CARDINALITY,
                f"{len(subjects)} subjects but {len(codes)} subjectCodes",
                "subjectCodes",
            )

    def bundle_facts(self, known: set[tuple[str, str]]) -> None:
        """Findings from what the fetcher saw in the whole bundle (and the tenant's records)."""
        facts = self.event.facts
        if facts is None or self.operation is Operation.DELETE:
            return
        if facts.duplicate_of_row is not None:
            self.add(
                Code.DUPLICATE_SOURCED_ID,
                f"sourcedId already used on row {facts.duplicate_of_row}",
                "sourcedId",
                self.event.sourced_id,
            )
        if facts.in_cycle:
            self.add(
                Code.ORG_CYCLE,
                "the org's parentSourcedId chain loops back to it",
                "parentSourcedId",
                self.payload.get("parentSourcedId"),
            )
        if facts.field_count is not None:
            self.add(
                Code.FIELD_COUNT,
                f"the row has {facts.field_count} fields, the header has a different number",
                None,
            )
        for column_name, ids in facts.dangling.items():
            self._dangling(column_name, ids, "is not in this bulk file")
        for column_name, ids in facts.unresolved.items():
            target = self.spec.target_of(column_name)
            assert target is not None
            missing = [i for i in ids if (target.value, i) not in known]
            if missing:
                self._dangling(
                    column_name, missing, "is neither in this bundle nor known for this tenant"
                )

    def _dangling(self, column_name: str, ids: list[str], why: str) -> None:
        column = self.spec.by_name[column_name]
        code: Code = (
            Code.DANGLING_REFERENCE if column.required else Code.DANGLING_OPTIONAL_REFERENCE
        )
        entity = self.spec.target_of(column_name)
        target = entity.value if entity is not None else "?"
        for ref in ids:
            self.add(code, f"{target} {ref!r} {why}", column_name, ref)
        if code == Code.DANGLING_OPTIONAL_REFERENCE:
            # Lenient: keep the record, drop the reference that leads nowhere.
            kept = [v for v in self._as_list(column_name) if v not in ids]
            if isinstance(self.payload.get(column_name), list):
                self.payload[column_name] = kept
            elif not kept:
                self.payload.pop(column_name, None)

    def _as_list(self, column_name: str) -> list[str]:
        value = self.payload.get(column_name)
        return value if isinstance(value, list) else [value] if value else []
