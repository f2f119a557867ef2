"""The API's OpenAPI document, as checked in at docs/openapi.json (a test fails when it drifts).

python -m rostersync_api.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rostersync_api.app import create_app
from rostersync_api.settings import ApiSettings


def document() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(ApiSettings()).openapi()
    return spec


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(rendered())
