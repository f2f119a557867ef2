"""Every finding code any stage reports, each with its severity under each validation profile.

Codes are stable: operators and dashboards key on them. The validator's mirror the 1EdTech
conformance categories (missing file, missing header, scrambled header, missing required data, data
type, dangling reference). ``strict`` is the specification; ``lenient`` lets the slips real SIS
exports make through as warnings (the record is corrected where the intent is clear). Codes of the
other stages mean the same under both profiles (tests/unit/libs/test_validator_codes.py checks it).

A member is declared with its severities, so a code cannot exist without them and reading one
cannot fail at run time. ``Finding.code`` stays ``str``: findings read back from topics and tables
may carry codes of another version.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"  # the record is rejected
    WARNING = "warning"  # the record goes on, the finding is reported


E, W = Severity.ERROR, Severity.WARNING
PROFILES = ("strict", "lenient")


class Code(StrEnum):
    strict: Severity
    lenient: Severity

    def __new__(cls, value: str, strict: Severity, lenient: Severity) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.strict = strict
        member.lenient = lenient
        return member

    def severity(self, profile: str = "strict") -> Severity:
        """Its severity under ``profile`` (any profile but ``strict`` is lenient)."""
        return self.strict if profile == "strict" else self.lenient

    # validator, files
    MISSING_FILE = "missing_file", E, E
    MANIFEST_UNLISTED_FILE = "manifest_unlisted_file", W, W
    ABSENT_FILE_PRESENT = "absent_file_present", W, W
    MANIFEST_INVALID_VALUE = (
        "manifest_invalid_value",
        E,
        E,
    )  # blank or unknown: the file is not read
    MANIFEST_VALUE_CASE = "manifest_value_case", E, W
    MANIFEST_ABSENT_REFERENCED = "manifest_absent_referenced", E, W
    EMPTY_FILE = "empty_file", E, W
    ENCODING = "encoding", E, W
    MISSING_HEADER = "missing_header", E, E
    MISSING_OPTIONAL_HEADER = "missing_optional_header", E, W
    HEADER_CASE = "header_case", E, W
    SCRAMBLED_HEADER = "scrambled_header", E, W
    DUPLICATE_HEADER = "duplicate_header", E, W
    UNKNOWN_COLUMN = "unknown_column", E, W
    METADATA_NOT_LAST = "metadata_not_last", E, W
    PARSE_ERROR = "parse_error", E, E
    FILE_REJECTED = "file_rejected", E, E
    # the fetcher's limits (FileLimits): what they cut was not read
    LINE_TOO_LONG = "line_too_long", E, E
    TOO_MANY_COLUMNS = "too_many_columns", E, E
    TOO_MANY_ROWS = "too_many_rows", E, E
    UNSAFE_FILE = "unsafe_file", E, E
    # A REST source's credentials may not read an optional collection (403): nothing of it synced.
    COLLECTION_FORBIDDEN = "collection_forbidden", W, W
    # validator, records
    UNSUPPORTED_ENTITY = "unsupported_entity", E, E
    MISSING_REQUIRED_DATA = "missing_required_data", E, E
    INVALID_DATA_TYPE = "invalid_data_type", E, E
    BOOLEAN_CASE = "boolean_case", E, W
    DATE_ONLY_TIMESTAMP = "date_only_timestamp", E, W
    DATETIME_NOT_UTC = "datetime_not_utc", E, W
    INVALID_ENUMERATION = "invalid_enumeration", E, E
    ENUMERATION_CASE = "enumeration_case", E, W
    EXTENSION_VALUE_IN_1_1 = "extension_value_in_1_1", E, W
    INVALID_GRADE = "invalid_grade", W, W
    DUPLICATE_SOURCED_ID = "duplicate_sourced_id", E, E
    BULK_STATUS_FILLED = "bulk_status_filled", E, W
    DELTA_STATUS_MISSING = "delta_status_missing", E, W
    DELTA_DATE_MISSING = "delta_date_missing", E, W
    LEGACY_INACTIVE_STATUS = "legacy_inactive_status", E, W
    DANGLING_REFERENCE = "dangling_reference", E, E
    DANGLING_OPTIONAL_REFERENCE = "dangling_optional_reference", E, W
    ORG_CYCLE = "org_cycle", E, E
    FIELD_COUNT = "field_count", E, W
    LIST_CARDINALITY = "list_cardinality", W, W
    # a NUL character (\x00) is removed from the value, which is kept (PostgreSQL text cannot
    # hold one); in the record's own sourcedId (its key, which no stage may change) it rejects it
    NUL_CHARACTER = "nul_character", W, W
    NUL_CHARACTER_IN_ID = "nul_character_in_id", E, E
    # every stage (stage.py, the writer's poison.py): a message that is not a usable event
    EMPTY_MESSAGE = "empty_message", E, E
    ENVELOPE_UNDECODABLE = "envelope_undecodable", E, E
    ENVELOPE_INCOMPLETE = "envelope_incomplete", E, E
    ENVELOPE_TENANT_MISMATCH = "envelope_tenant_mismatch", E, E
    MESSAGE_TOO_LARGE = "message_too_large", E, E
    # a record its stage could not handle (the exception is kept with the dead letter)
    VALIDATOR_APPLY_FAILED = "validator_apply_failed", E, E
    MAPPER_APPLY_FAILED = "mapper_apply_failed", E, E
    WRITER_APPLY_FAILED = "writer_apply_failed", E, E
    # the findings left out of a bounded list; its severity is that of the worst one left out
    FINDINGS_TRUNCATED = "findings_truncated", W, W
    # mapper: never guessed, the record keeps its default id
    AMBIGUOUS_MATCH = "ambiguous_match", W, W
    IDENTITY_CONFLICT = "identity_conflict", W, W
    # writer (integrity.py, rejections.py)
    REFERENCE_REJECTED = "reference_rejected", E, E
    REFERENCE_MISSING = "reference_missing", E, E
    DEAD_LETTER_WITHOUT_REASONS = "dead_letter_without_reasons", E, E


# Each stage's code for a record it could not handle (stage.py); a stage of another name (a
# test's) reports the validator's.
APPLY_FAILED = {
    "validator": Code.VALIDATOR_APPLY_FAILED,
    "mapper": Code.MAPPER_APPLY_FAILED,
    "writer": Code.WRITER_APPLY_FAILED,
}
