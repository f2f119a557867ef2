"""Entry point: ``python -m rostersync_validator`` or ``rostersync-validator``."""

from __future__ import annotations

from functools import partial

from rostersync_libs.service import run_service

from rostersync_validator.app import run
from rostersync_validator.settings import ValidatorSettings


def main() -> None:
    settings = ValidatorSettings()
    run_service("validator", settings, partial(run, settings))


if __name__ == "__main__":
    main()
