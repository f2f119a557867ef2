"""Entry point: ``python -m rostersync_fetcher`` or ``rostersync-fetcher``."""

from __future__ import annotations

from rostersync_libs.service import run_service

from rostersync_fetcher.app import FetcherService
from rostersync_fetcher.settings import FetcherSettings


def main() -> None:
    settings = FetcherSettings()
    run_service("fetcher", settings, FetcherService(settings).run)


if __name__ == "__main__":
    main()
