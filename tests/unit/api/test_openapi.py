"""The checked-in OpenAPI document is the API's (regenerate: python -m rostersync_api.openapi)."""

from __future__ import annotations

from pathlib import Path

from rostersync_api.openapi import document, rendered

CHECKED_IN = Path(__file__).parents[3] / "docs" / "openapi.json"


def test_the_checked_in_openapi_document_is_the_api_s() -> None:
    assert CHECKED_IN.read_text() == rendered(), (
        "docs/openapi.json drifted: python -m rostersync_api.openapi > docs/openapi.json"
    )


def test_every_api_path_is_versioned_and_every_operation_says_what_it_does() -> None:
    paths = document()["paths"]
    assert {p for p in paths if not p.startswith("/api/v1/")} == {"/healthz", "/readyz"}
    assert "/api/v1/tenants/{tenant_id}/holds/{run_id}/{verdict}" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path}"
