"""Entry point: ``python -m rostersync_api`` or ``rostersync-api`` (uvicorn, one process)."""

from __future__ import annotations

import uvicorn
from rostersync_libs.logs import configure_logging

from rostersync_api.app import create_app
from rostersync_api.settings import ApiSettings


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level, "api", settings.log_format)
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_config=None, access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
