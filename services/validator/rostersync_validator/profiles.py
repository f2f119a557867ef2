"""Finding codes and their severity under each validation profile.

Codes are stable: operators and dashboards key on them. They mirror the 1EdTech conformance
categories (missing file, missing header, scrambled header, missing required data, data type,
dangling reference). ``strict`` is the specification; ``lenient`` lets the slips real SIS exports
make through as warnings (the record is corrected where the intent is clear).
"""

from __future__ import annotations

from typing import Literal, get_args

from rostersync_libs.findings import Severity

E, W = Severity.ERROR, Severity.WARNING

# Every code the validator reports: a code outside this type does not type-check, and the
# table below must give each one its severities (tests/unit/test_validator_codes.py).
ValidatorCode = Literal[
    "missing_file",
    "manifest_unlisted_file",
    "absent_file_present",
    "manifest_invalid_value",
    "manifest_value_case",
    "manifest_absent_referenced",
    "empty_file",
    "encoding",
    "missing_header",
    "missing_optional_header",
    "header_case",
    "scrambled_header",
    "duplicate_header",
    "unknown_column",
    "metadata_not_last",
    "parse_error",
    "file_rejected",
    "line_too_long",
    "too_many_columns",
    "too_many_rows",
    "unsafe_file",
    "collection_forbidden",
    "missing_required_data",
    "invalid_data_type",
    "boolean_case",
    "date_only_timestamp",
    "datetime_not_utc",
    "invalid_enumeration",
    "enumeration_case",
    "extension_value_in_1_1",
    "invalid_grade",
    "duplicate_sourced_id",
    "bulk_status_filled",
    "delta_status_missing",
    "delta_date_missing",
    "legacy_inactive_status",
    "dangling_reference",
    "dangling_optional_reference",
    "org_cycle",
    "field_count",
    "list_cardinality",
    "nul_character",
    "nul_character_in_id",
]

# code → (strict, lenient)
SEVERITY: dict[ValidatorCode, tuple[Severity, Severity]] = {
    # files
    "missing_file": (E, E),
    "manifest_unlisted_file": (W, W),
    "absent_file_present": (W, W),
    "manifest_invalid_value": (E, E),  # blank or unknown file.* value: the file is not read
    "manifest_value_case": (E, W),
    "manifest_absent_referenced": (E, W),
    "empty_file": (E, W),
    "encoding": (E, W),
    "missing_header": (E, E),
    "missing_optional_header": (E, W),
    "header_case": (E, W),
    "scrambled_header": (E, W),
    "duplicate_header": (E, W),
    "unknown_column": (E, W),
    "metadata_not_last": (E, W),
    "parse_error": (E, E),
    "file_rejected": (E, E),
    # the fetcher's limits (FileLimits): what they cut was not read
    "line_too_long": (E, E),
    "too_many_columns": (E, E),
    "too_many_rows": (E, E),
    "unsafe_file": (E, E),
    # A REST source's credentials may not read an optional collection (403): nothing of it synced.
    "collection_forbidden": (W, W),
    # records
    "missing_required_data": (E, E),
    "invalid_data_type": (E, E),
    "boolean_case": (E, W),
    "date_only_timestamp": (E, W),
    "datetime_not_utc": (E, W),
    "invalid_enumeration": (E, E),
    "enumeration_case": (E, W),
    "extension_value_in_1_1": (E, W),
    "invalid_grade": (W, W),
    "duplicate_sourced_id": (E, E),
    "bulk_status_filled": (E, W),
    "delta_status_missing": (E, W),
    "delta_date_missing": (E, W),
    "legacy_inactive_status": (E, W),
    "dangling_reference": (E, E),
    "dangling_optional_reference": (E, W),
    "org_cycle": (E, E),
    "field_count": (E, W),
    "list_cardinality": (W, W),
    # a NUL character (\x00) is removed from the value, which is kept (PostgreSQL text cannot
    # hold one); in the record's own sourcedId (its key, which no stage may change) it rejects it
    "nul_character": (W, W),
    "nul_character_in_id": (E, E),
}


def severity(code: ValidatorCode, profile: str) -> Severity:
    strict, lenient = SEVERITY[code]
    return strict if profile == "strict" else lenient


CODES: frozenset[str] = frozenset(get_args(ValidatorCode))
