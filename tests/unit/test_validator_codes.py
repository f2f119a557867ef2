"""Every code the validator can report has its severities; nothing else is in the table."""

from __future__ import annotations

from rostersync_libs.findings import Severity
from rostersync_validator.profiles import CODES, SEVERITY, severity


def test_every_validator_code_has_a_severity_under_both_profiles_and_no_other() -> None:
    assert set(SEVERITY) == CODES
    for code, pair in SEVERITY.items():
        assert len(pair) == 2, code
        assert all(isinstance(s, Severity) for s in pair), code
    # Lenient never makes a fault more severe than the specification does.
    order = {Severity.WARNING: 0, Severity.ERROR: 1}
    assert all(order[lenient] <= order[strict] for strict, lenient in SEVERITY.values())
    assert severity("boolean_case", "strict") is Severity.ERROR
    assert severity("boolean_case", "lenient") is Severity.WARNING
