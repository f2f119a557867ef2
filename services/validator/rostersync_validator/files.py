"""File-level checks: what the fetcher found about a file, judged against the specification."""

from __future__ import annotations

import re
from collections import Counter

from rostersync_libs.envelope import FileFacts
from rostersync_libs.findings import Finding, Severity
from rostersync_libs.oneroster.columns import spec_for

from rostersync_validator.profiles import ValidatorCode, severity

METADATA_PREFIX = "metadata."


def _finding(
    facts: FileFacts, code: ValidatorCode, message: str, column: str | None = None
) -> Finding:
    return Finding(
        code=code,
        severity=severity(code, facts.profile),
        message=message,
        file=facts.file,
        row=1 if column else None,
        column=column,
    )


MANIFEST = "manifest.csv"
MANIFEST_MODES = ("bulk", "delta", "absent")

# What one of the fetcher's limits cut from a file, as it states it in ``parse_error``:
# ``[code] line N: message`` (rostersync_libs/oneroster/cuts.py, ``Cut.fact``).
LIMIT_FACT = re.compile(r"^\[(?P<code>[a-z_]+)\](?: line (?P<line>\d+))?: (?P<message>.*)$", re.S)
LIMIT_CODES: dict[str, ValidatorCode] = {
    code: code
    for code in (
        "line_too_long", "too_many_columns", "too_many_rows", "unsafe_file", "collection_forbidden"
    )
}  # fmt: skip


def _limit(facts: FileFacts) -> Finding | None:
    """The finding for a limit's cut, on the line it names (None: not a limit's fact)."""
    match = LIMIT_FACT.match(facts.parse_error or "")
    code = LIMIT_CODES.get(match["code"]) if match is not None else None
    if match is None or code is None:
        return None
    return Finding(
        code=code,
        severity=severity(code, facts.profile),
        message=match["message"],
        file=facts.file,
        row=int(match["line"]) if match["line"] else None,
    )


def _manifest_finding(facts: FileFacts, code: ValidatorCode, message: str) -> Finding:
    """A finding on the file's line of manifest.csv (column ``value``, as written)."""
    return Finding(
        code=code,
        severity=severity(code, facts.profile),
        message=message,
        file=MANIFEST,
        row=facts.manifest_line,
        column="value",
        value=facts.manifest_value,
    )


def _manifest(facts: FileFacts) -> list[Finding]:
    """The file's manifest line: its value, and whether a file declared absent is referenced."""
    value = facts.manifest_value
    if value is None:
        return []  # not listed: see _presence
    prop = f"file.{facts.file.removesuffix('.csv')}"
    expected = ", ".join(MANIFEST_MODES)
    if not value:
        return [
            _manifest_finding(
                facts,
                "manifest_invalid_value",
                f"{prop} has no value (expected one of {expected}); read as absent:"
                f" {facts.file} is not read",
            )
        ]
    if value.lower() not in MANIFEST_MODES:
        return [
            _manifest_finding(
                facts,
                "manifest_invalid_value",
                f"{prop}={value!r} is not one of {expected}; read as absent:"
                f" {facts.file} is not read",
            )
        ]
    found = []
    if value not in MANIFEST_MODES:
        found.append(
            _manifest_finding(
                facts,
                "manifest_value_case",
                f"{prop}={value!r} must be written {value.lower()!r}; read as {value.lower()}",
            )
        )
    if value.lower() == "absent" and facts.referenced_by:
        referring = " and ".join(
            f"{file} ({', '.join(columns)})"
            for file, columns in sorted(facts.referenced_by.items())
        )
        verb = "references" if len(facts.referenced_by) == 1 else "reference"
        entity = facts.file.removesuffix(".csv")
        found.append(
            _manifest_finding(
                facts,
                "manifest_absent_referenced",
                f"{prop}=absent, but {referring} {verb} {entity}: a bulk bundle must hold what"
                " it references (each reference is looked up in the tenant's records instead)",
            )
        )
    return found


def _invalid_manifest_value(facts: FileFacts) -> bool:
    return facts.manifest_value is not None and facts.manifest_value.lower() not in MANIFEST_MODES


def _presence(facts: FileFacts) -> list[Finding]:
    if facts.mode in ("bulk", "delta") and not facts.present:
        return [
            _finding(
                facts,
                "missing_file",
                f"manifest.csv declares {facts.file} {facts.mode} but the bundle has no such file",
            )
        ]
    if facts.mode == "unlisted" and facts.present:
        return [
            _finding(
                facts,
                "manifest_unlisted_file",
                f"manifest.csv has no file.{facts.file[:-4]} entry; the file is not read",
            )
        ]
    if facts.mode == "absent" and facts.present and not _invalid_manifest_value(facts):
        return [
            _finding(
                facts,
                "absent_file_present",
                f"manifest.csv declares {facts.file} absent; the file is not read",
            )
        ]
    return []


def _header(facts: FileFacts) -> list[Finding]:
    assert facts.entity is not None
    spec = spec_for(facts.oneroster_version, facts.entity, facts.header)
    found: list[Finding] = []
    header = [h.strip() for h in facts.header]
    for name, count in Counter(header).items():
        if count > 1:
            found.append(
                _finding(
                    facts,
                    "duplicate_header",
                    f"column {name!r} appears {count} times; the first is read",
                    name,
                )
            )
    by_lower = {h.lower(): h for h in header}
    for column in spec.columns:
        actual = by_lower.get(column.name.lower())
        if actual is None:
            code: ValidatorCode = "missing_header" if column.required else "missing_optional_header"
            found.append(
                _finding(facts, code, f"the header has no {column.name} column", column.name)
            )
        elif actual != column.name:
            found.append(
                _finding(
                    facts, "header_case", f"{actual!r} must be written {column.name!r}", actual
                )
            )
    known = {c.name.lower() for c in spec.columns}
    for name in header:
        if name.lower() not in known and not name.startswith(METADATA_PREFIX):
            found.append(
                _finding(
                    facts,
                    "unknown_column",
                    f"{name!r} is not a OneRoster column (extensions are named metadata.*); it is not read",
                    name,
                )
            )
    defined = [h for h in header if h.lower() in known]
    expected = [
        c.name.lower() for c in spec.columns if c.name.lower() in {d.lower() for d in defined}
    ]
    if [d.lower() for d in defined] != expected:
        found.append(
            _finding(
                facts,
                "scrambled_header",
                f"columns are not in the specification's order ({', '.join(spec.names)})",
            )
        )
    seen_metadata = False
    for name in header:
        if name.startswith(METADATA_PREFIX):
            seen_metadata = True
        elif seen_metadata and name.lower() in known:
            found.append(
                _finding(
                    facts,
                    "metadata_not_last",
                    f"metadata columns must come after the defined columns; {name!r} follows one",
                    name,
                )
            )
            break
    return found


def file_findings(facts: FileFacts) -> list[Finding]:
    """Every file-level fault of one file (and of its line in manifest.csv)."""
    found = _manifest(facts) + _presence(facts)
    if not facts.present or facts.mode not in ("bulk", "delta"):
        return found
    if facts.encoding_error:
        found.append(_finding(facts, "encoding", facts.encoding_error))
    if facts.parse_error and (limit := _limit(facts)) is not None:
        found.append(limit)
        return found
    if facts.parse_error:
        found.append(
            _finding(
                facts,
                "parse_error",
                f"the CSV cannot be read {facts.parse_error}; later rows are not read",
            )
        )
        return found
    if not facts.has_rows:
        found.append(
            _finding(
                facts,
                "empty_file",
                "the file has no data rows (OneRoster does not permit empty files)",
            )
        )
    return found + _header(facts)


def rejects_rows(findings: list[Finding]) -> list[Finding]:
    """The file-level errors that make each row of the file unacceptable (strict profile)."""
    row_level = {"missing_header", "parse_error", "missing_file", "empty_file", *LIMIT_CODES}
    return [f for f in findings if f.severity is Severity.ERROR and f.code not in row_level]
