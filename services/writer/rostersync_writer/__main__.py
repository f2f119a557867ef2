"""Entry point: ``python -m rostersync_writer`` or ``rostersync-writer``."""

from __future__ import annotations

from functools import partial

from rostersync_libs.service import run_service

from rostersync_writer.app import run
from rostersync_writer.settings import WriterSettings


def main() -> None:
    settings = WriterSettings()
    run_service("writer", settings, partial(run, settings))


if __name__ == "__main__":
    main()
