"""Sending one notification: a signed webhook, or an e-mail.

Webhook: POST of the JSON detail, with ``X-Rostersync-Timestamp`` and ``X-Rostersync-Signature:
sha256=HMAC(secret, "<timestamp>.<body>")`` (the receiver checks both, and refuses old
timestamps: a replayed request fails). A 2xx is delivered; anything else is retried.
E-mail: a short text message through the configured SMTP server (``ROSTERSYNC_SMTP_*``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import time
from email.message import EmailMessage
from typing import Any

import httpx
from rostersync_libs.notify_config import Notify
from rostersync_libs.settings import env_secret

from rostersync_api.settings import ApiSettings


class DeliveryFailed(Exception):  # noqa: N818 - what the delivery log records
    pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def webhook(http: httpx.AsyncClient, notify: Notify, url: str, body: bytes) -> None:
    hook = next((h for h in notify.webhooks if h.url == url), None)
    secret = None
    if hook is not None and hook.secret_env:
        try:
            secret = env_secret(hook.secret_env, "the signing secret").get_secret_value()
        except KeyError as exc:
            raise DeliveryFailed(exc.args[0]) from None
    await post_signed(http, url, body, secret)


async def post_signed(http: httpx.AsyncClient, url: str, body: bytes, secret: str | None) -> None:
    """POST ``body`` (JSON), signed when there is a secret; DeliveryFailed unless a 2xx."""
    headers = {"Content-Type": "application/json", "User-Agent": "rostersync"}
    if secret is not None:
        stamp = str(int(time.time()))
        headers |= {"X-Rostersync-Timestamp": stamp,
                    "X-Rostersync-Signature": signature(secret, stamp, body)}  # fmt: skip
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}") from None
    if not response.is_success:
        raise DeliveryFailed(f"HTTP {response.status_code}")


async def email(settings: ApiSettings, address: str, detail: dict[str, Any]) -> None:
    if settings.smtp_host is None:
        raise DeliveryFailed("no SMTP server configured (ROSTERSYNC_SMTP_HOST)")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = address
    message["Subject"] = f"rostersync: run of {detail['tenant']} {detail['event']}"
    message.set_content(
        f"Tenant {detail['tenant']}, source {detail['source']}, run {detail['run_id']}:\n"
        f"{detail['status']}. {detail['detail']}\n"
        f"Rejected records: {detail['rejected_records']}.\n"
    )

    def send() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)

    try:
        await asyncio.to_thread(send)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}") from None
