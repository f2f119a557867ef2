"""Findings: what is wrong with a record, precisely enough for an operator to fix it."""

from __future__ import annotations

from collections import Counter

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter

from rostersync_libs.finding_codes import Code
from rostersync_libs.finding_codes import Severity as Severity  # where every stage finds it


class Finding(BaseModel):
    """One fault of one record: a stable code, where it is, and what was expected."""

    model_config = ConfigDict(frozen=True)

    code: str  # a Code when made here; read back, a code of any version (finding_codes.py)
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


# Bounds of what one event may carry (a findings event, a dead letter's headers): Kafka refuses a
# message over its size limit (1 MB by default), and a stage that cannot send its output stops.
# A header of 10,000 unknown columns is 10,000 findings: the event keeps the first ones (errors
# first) and says how many more there were and of which codes. At most 101 findings of at most
# 1,364 characters each: about 150 kB of plain text, under 850 kB even if every character took
# six bytes (a JSON escape).
MAX_FINDINGS = 100
MAX_CHARS = {"code": 64, "message": 800, "file": 100, "column": 100, "value": 300}
TRUNCATED = Code.FINDINGS_TRUNCATED
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def clipped(finding: Finding) -> Finding:
    """The finding with every text field within :data:`MAX_CHARS`."""
    long = {
        name: clip(value, limit)
        for name, limit in MAX_CHARS.items()
        if isinstance(value := getattr(finding, name), str) and len(value) > limit
    }
    return finding.model_copy(update=long) if long else finding


def _more(rest: list[Finding]) -> Finding:
    """One finding standing for the findings left out: how many, of which codes, where."""
    codes = Counter(f.code for f in rest).most_common()
    listed = ", ".join(f"{clip(code, 40)}: {count:,}" for code, count in codes[:5])
    if len(codes) > 5:
        listed += f", {len(codes) - 5:,} more codes"
    files = {f.file for f in rest}
    rows = {f.row for f in rest}
    errors = any(f.severity is Severity.ERROR for f in rest)
    return clipped(
        Finding(
            code=TRUNCATED,
            severity=Severity.ERROR if errors else Severity.WARNING,
            message=f"{ELLIPSIS} and {len(rest):,} more ({listed}): not listed one by one",
            file=files.pop() if len(files) == 1 else None,
            row=rows.pop() if len(rows) == 1 else None,
        )
    )


def bounded(findings: list[Finding], limit: int = MAX_FINDINGS) -> list[Finding]:
    """At most ``limit`` findings, each clipped, then one that counts the rest (if any).

    Errors come first when some must be left out (they decide a record's fate). Idempotent: a
    list already bounded comes back as it is.
    """
    if len(findings) <= limit or (len(findings) == limit + 1 and findings[-1].code == TRUNCATED):
        return [clipped(f) for f in findings]
    ordered = sorted(findings, key=lambda f: f.severity is not Severity.ERROR)
    return [clipped(f) for f in ordered[:limit]] + [_more(ordered[limit:])]
