"""Finding codes and their severity under each validation profile.

Codes are stable: operators and dashboards key on them. They mirror the 1EdTech conformance
categories (missing file, missing header, scrambled header, missing required data, data type,
dangling reference). ``strict`` is the specification; ``lenient`` lets the slips real SIS exports
make through as warnings (the record is corrected where the intent is clear).
"""

from __future__ import annotations

from rostersync_libs.findings import Severity

E, W = Severity.ERROR, Severity.WARNING

# code → (strict, lenient)
SEVERITY: dict[str, tuple[Severity, Severity]] = {
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


def severity(code: str, profile: str) -> Severity:
    strict, lenient = SEVERITY[code]
    return strict if profile == "strict" else lenient
