"""A tenant's notifications: who hears about a failed, held, cancelled or rejection-heavy run,
and how.

[tenants.notify]
email = ["rostering@district.example"]
rejections_over = 50          # a completed run with more rejected records than this
[[tenants.notify.webhooks]]
url = "https://ops.example/hooks/rostersync"
secret_env = "LINCOLN_HOOK_SECRET"   # signs each body (HMAC-SHA256 with a timestamp)
on = ["failed", "held"]              # default: every event (failed, held, rejections, cancelled)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# cancelled: an operator stopped the run (``rostersync runs cancel``); the detail says who
NotifyEvent = Literal["failed", "held", "rejections", "cancelled"]
EVERY_EVENT: tuple[NotifyEvent, ...] = ("failed", "held", "rejections", "cancelled")


class Webhook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^https?://")
    # The variable holding the signing secret; unset: the body is sent unsigned.
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    on: tuple[NotifyEvent, ...] = EVERY_EVENT


class Notify(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    webhooks: tuple[Webhook, ...] = ()
    email: tuple[str, ...] = Field(default=(), description="recipients of every event")
    rejections_over: int = Field(default=0, ge=0)

    def targets(self, event: NotifyEvent) -> list[str]:
        """Where an event goes: webhook URLs and ``mailto:`` addresses."""
        hooks = [h.url for h in self.webhooks if event in h.on]
        return hooks + [f"mailto:{address}" for address in self.email]
