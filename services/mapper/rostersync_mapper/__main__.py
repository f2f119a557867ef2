"""Entry point: ``python -m rostersync_mapper`` or ``rostersync-mapper``."""

from __future__ import annotations

from functools import partial

from rostersync_libs.service import run_service

from rostersync_mapper.app import run
from rostersync_mapper.settings import MapperSettings


def main() -> None:
    settings = MapperSettings()
    run_service("mapper", settings, partial(run, settings))


if __name__ == "__main__":
    main()
