"""Every finding code any stage reports is in the registry (finding_codes.py), with its severities.

The registry holds each code with its severities by construction; what this checks is that no
code is made outside it: a scan of every source file for a finding built with a literal code
(``Finding(code="…")``), for a code written into a fetcher fact (``"[code]: …"``), and for a
literal passed where a code is expected.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from rostersync_libs.finding_codes import APPLY_FAILED, PROFILES, Code
from rostersync_libs.findings import Severity

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [
    path
    for folder in ("libs", "services", "cli", "tools")
    for path in (ROOT / folder).rglob("*.py")
    if ".venv" not in path.parts
]
VALIDATOR_LAST = Code.NUL_CHARACTER_IN_ID  # the validator's codes come first in the registry
# A fact the fetcher writes for the validator: ``[code] line N: message`` (limits.py, rest/run.py).
FACT = re.compile(r"\"\[([a-z_0-9]+)\](?: line|:)")
# Functions whose first argument (or ``code=``) is a finding code (mypy checks the others' types).
TAKES_A_CODE = {"Finding", "failure", "_finding", "file_finding", "_manifest_finding", "Cut"}


def test_every_code_has_a_severity_under_both_profiles() -> None:
    for code in Code:
        pair = (code.severity("strict"), code.severity("lenient"))
        assert all(isinstance(s, Severity) for s in pair), code
        assert [code.severity(p) for p in PROFILES] == list(pair)
    # Lenient never makes a fault more severe than the specification does.
    order = {Severity.WARNING: 0, Severity.ERROR: 1}
    assert all(order[c.lenient] <= order[c.strict] for c in Code)
    assert Code.BOOLEAN_CASE.severity("strict") is Severity.ERROR
    assert Code.BOOLEAN_CASE.severity("lenient") is Severity.WARNING


def test_codes_of_the_other_stages_mean_the_same_under_every_profile() -> None:
    others = list(Code)[list(Code).index(VALIDATOR_LAST) + 1 :]
    assert Code.WRITER_APPLY_FAILED in others
    assert Code.AMBIGUOUS_MATCH in others
    assert all(c.strict is c.lenient for c in others)
    assert set(APPLY_FAILED.values()) <= set(others)


def _literal_codes(tree: ast.AST) -> list[str]:
    """String literals given where a finding code goes."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in TAKES_A_CODE:
            continue
        args = [k.value for k in node.keywords if k.arg == "code"]
        if name != "Finding" and node.args:
            args.append(node.args[0])
        found += [a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def test_the_scan_sees_literal_codes() -> None:
    made = 'Finding(code="x", severity=s, message=m); failure("y", exc); _finding(e, Code.Z, m)'
    assert _literal_codes(ast.parse(made)) == ["x", "y"]
    assert FACT.findall('f"[too_many_rows] line 3: …"; f"[collection_forbidden]: …"') == [
        "too_many_rows",
        "collection_forbidden",
    ]


def test_no_source_makes_a_code_outside_the_registry() -> None:
    registered = {c.value for c in Code}
    literal, facts = [], []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        literal += [f"{where}: {code}" for code in _literal_codes(ast.parse(text))]
        facts += [f"{where}: {c}" for c in FACT.findall(text) if c not in registered]
    assert literal == [], "use the Code member, not a string"
    assert facts == [], "a fact's code that is not in the registry"
    assert len(SOURCES) > 100  # the scan did read the tree
