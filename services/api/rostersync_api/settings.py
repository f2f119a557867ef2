"""The admin API's settings (the shared ones, and where it listens and keeps uploads)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from rostersync_libs.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8470, ge=0, le=65535)  # 0: any free port (tests)
    # Bundles uploaded by hand are streamed here, one file per upload, then synced from here.
    upload_dir: Path = Path("uploads")
    max_upload_bytes: int = Field(default=1 << 30, ge=1)  # a large district's zip is ≈ 100 MB
    # Requests per token (rate_limit.py): ``burst`` at once, then this many a second; 0: no limit.
    api_rate_per_second: float = Field(default=20.0, ge=0)
    api_rate_burst: int = Field(default=100, ge=1)
    # Notifications (notify/): how often runs are looked at, and the SMTP server for e-mail.
    notify_poll_seconds: float = Field(default=15.0, gt=0)
    notify_retry_seconds: float = Field(default=10.0, gt=0)  # the first pause; doubles, ≤ 1 h
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "rostersync@localhost"
