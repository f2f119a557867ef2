"""Findings: what is wrong with a record, precisely enough for an operator to fix it."""

from __future__ import annotations

from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter


class Severity(StrEnum):
    ERROR = "error"  # the record is rejected
    WARNING = "warning"  # the record goes on, the finding is reported


class Finding(BaseModel):
    """One fault of one record: a stable code, where it is, and what was expected."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def describe(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.row) if p is not None)
        col = f" column {self.column}" if self.column else ""
        return f"[{self.code}] {where}{col}: {self.message}"


FINDINGS = TypeAdapter(list[Finding])


def findings_to_json(findings: list[Finding]) -> bytes:
    return orjson.dumps([f.model_dump(mode="json", exclude_none=True) for f in findings])


def findings_from_json(data: bytes) -> list[Finding]:
    return FINDINGS.validate_json(data)


class FindingsEvent(BaseModel):
    """The findings a stage made about one record or one file, on the findings topic.

    Every finding, warning or error, is published here (the run report is built from them);
    rejected records also go, whole, to the stage's dead-letter topic.
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    run_id: str
    stage: str
    entity: str | None = None
    sourced_id: str | None = None
    rejected: bool = False
    findings: list[Finding]

    def key(self) -> bytes:
        return f"{self.tenant}:run:{self.run_id}".encode()
