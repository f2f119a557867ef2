"""Record-level rules: required values and enumerations of the OneRoster columns."""

from __future__ import annotations

from rostersync_libs.envelope import Envelope, Operation
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.oneroster.columns import BY_ENTITY, FileSpec
from rostersync_libs.stage import Rejected


def _finding(event: Envelope, code: str, column: str, message: str, value: str | None) -> Finding:
    origin = event.origin
    return Finding(
        code=code,
        severity=Severity.ERROR,
        message=message,
        file=origin.file if origin else None,
        row=origin.row if origin else None,
        column=column,
        value=value,
    )


def findings_of(event: Envelope, spec: FileSpec) -> list[Finding]:
    """Every fault of one record; deletes need nothing but their sourcedId."""
    payload = event.payload
    findings: list[Finding] = []
    required = {"sourcedId"} if event.operation is Operation.DELETE else spec.required
    for column in spec.columns:
        if column in required and column not in payload:
            findings.append(
                _finding(
                    event,
                    "missing_required_data",
                    column,
                    f"{spec.file_name} requires a value in {column}",
                    None,
                )
            )
    for column, allowed in spec.enums.items():
        value = payload.get(column)
        if isinstance(value, str) and value not in allowed:
            findings.append(
                _finding(
                    event,
                    "invalid_enumeration",
                    column,
                    f"{value!r} is not one of {', '.join(sorted(allowed))}",
                    value,
                )
            )
    return findings


def validate(event: Envelope) -> Envelope | Rejected:
    """The validator's handler: the event unchanged, or its rejection."""
    if event.entity is None or event.entity not in BY_ENTITY:
        return Rejected(
            [
                Finding(
                    code="unsupported_entity",
                    severity=Severity.ERROR,
                    message=f"no rules for entity {event.entity}",
                )
            ]
        )
    findings = findings_of(event, BY_ENTITY[event.entity])
    errors = [f for f in findings if f.severity is Severity.ERROR]
    return Rejected(findings) if errors else event
