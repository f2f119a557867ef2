"""A finding about one file (on its header line when it names a column)."""

from __future__ import annotations

from rostersync_libs.events import FileFacts
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding


def file_finding(facts: FileFacts, code: Code, message: str, column: str | None = None) -> Finding:
    return Finding(
        code=code,
        severity=code.severity(facts.profile),
        message=message,
        file=facts.file,
        row=1 if column else None,
        column=column,
    )
