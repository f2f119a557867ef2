"""The source form: its fields to a ``Source`` (validated as the API validates one), and back.

Editing keeps what the form does not show (limits, selection, schedule details) from the source
being edited, so saving a path does not reset them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rostersync_libs.tenants import ApiSource, CsvSource, InboxSource, Source

MODELS: dict[str, type[CsvSource] | type[InboxSource] | type[ApiSource]] = {"csv": CsvSource, "inbox": InboxSource,
                                      "oneroster-api": ApiSource}  # fmt: skip
FIELDS = ("id", "kind", "path", "settle_seconds", "base_url", "version", "auth_kind", "key",
          "client_id", "token_url", "secret_env", "every_seconds")  # fmt: skip


def shown(source: Source | None) -> dict[str, str]:
    """The form's values for a source (empty for a new one)."""
    if source is None:
        return {"kind": "csv", "version": "1.1", "auth_kind": "oauth2"}
    values = {k: "" if v is None else str(v) for k, v in source.model_dump(mode="json").items()
              if not isinstance(v, dict | list)}  # fmt: skip
    if isinstance(source, ApiSource):
        auth = source.auth.model_dump(mode="json")
        values |= {"auth_kind": auth["kind"], "secret_env": auth.get("secret_env") or "",
                   "key": auth.get("key", ""), "client_id": auth.get("client_id", ""),
                   "token_url": auth.get("token_url", "")}  # fmt: skip
        every = source.schedule.every_seconds if source.schedule else None
        values["every_seconds"] = "" if every is None else f"{every:g}"
    return values


def parsed(form: dict[str, str], editing: Source | None) -> Source:
    """The source the form describes; ``ValidationError`` says which field is wrong."""
    kind = form.get("kind", "")
    base: dict[str, Any] = {}
    if editing is not None and editing.kind == kind:
        base = editing.model_dump(mode="json", exclude_none=True)
    base |= {"id": form.get("id", ""), "kind": kind}
    if kind in ("csv", "inbox"):
        base["path"] = form.get("path", "")
        if kind == "inbox" and form.get("settle_seconds"):
            base["settle_seconds"] = form["settle_seconds"]
    else:
        base |= {"base_url": form.get("base_url", ""), "version": form.get("version") or "1.1"}
        auth: dict[str, Any] = {"kind": form.get("auth_kind", "")}
        if auth["kind"] == "oauth1":
            auth["key"] = form.get("key", "")
        else:
            auth |= {"client_id": form.get("client_id", ""), "token_url": form.get("token_url", "")}
        auth["secret_env"] = form.get("secret_env") or None
        base["auth"] = auth
        schedule = dict(base.get("schedule") or {})
        schedule["every_seconds"] = form.get("every_seconds") or None  # pydantic checks the number
        keep = schedule["every_seconds"] or schedule.get("daily_at")
        base["schedule"] = schedule if keep else None
    model = MODELS.get(kind, CsvSource)  # an unknown kind: CsvSource's error names the field
    return model.model_validate(base)


def problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'source'}: {e['msg']}"
            for e in exc.errors()[:10]]  # fmt: skip
