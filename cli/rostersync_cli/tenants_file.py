"""The tenants file as a way in and out of the admin API's tenants (``tenant_configs``).

``tenants check FILE`` says what is wrong in one line per problem, with the line and the key
(``tenants.toml:7: tenants[0] (d1) sources[1] (api): base_url: …``), never a traceback.
``tenants import FILE`` stores its tenants as the API's (validated the same way; relative paths
made absolute against the file's folder), ``tenants export`` writes the API's back as TOML.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import tomli_w
from pydantic import ValidationError
from rostersync_libs.tenant_registry import TABLE
from rostersync_libs.tenants import SOURCE_MODELS, Tenant, TenantsConfig, load_tenants

CLI_TOKEN = UUID(int=0)  # api_audit rows made by the CLI (its login is in token_name)


def problems(path: Path) -> list[str]:
    """Everything wrong with the file, one message each (none: it is valid)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [f"{path}: cannot read it ({exc.strerror or exc})"]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"{path}: not TOML: {exc}"]
    try:
        TenantsConfig.model_validate(raw)
    except ValidationError as exc:
        return [_describe(path, text, raw, e) for e in exc.errors() if _about_its_kind(raw, e)]
    return []


# A source is one of these models, chosen by its ``kind`` (csv when left out); pydantic reports
# a source's errors against every model: only those of the model its kind names are its own.
MEMBERS = {model.__name__: kind for kind, model in SOURCE_MODELS.items()}


def _about_its_kind(raw: dict[str, Any], error: Any) -> bool:
    loc = error["loc"]
    member = next((p for p in loc if p in MEMBERS), None)
    if member is None or "sources" not in loc:
        return True
    at = loc.index("sources")
    try:
        source = raw["tenants"][loc[1]]["sources"][loc[at + 1]]
    except (KeyError, IndexError, TypeError):
        return True
    kind = source.get("kind", "csv") if isinstance(source, dict) else "csv"
    return MEMBERS[member] == kind


# The tag pydantic adds to a location inside a union member (a source's or an auth's kind).
KINDS = frozenset({*MEMBERS.values(), *MEMBERS, "oauth1", "oauth2"})


def _describe(path: Path, text: str, raw: dict[str, Any], error: Any) -> str:
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p in KINDS)]
    parts: list[str] = []
    node: Any = raw
    found: dict[str, int] = {}  # "tenants" / "sources" → the index the error is under
    for i, part in enumerate(loc):
        if isinstance(part, int):
            item: Any = node[part] if isinstance(node, list) and part < len(node) else {}
            label = item.get("id") if isinstance(item, dict) else None
            parts[-1] += f"[{part}]" + (f" ({label})" if label else "")
            found[str(loc[i - 1])] = part
            node = item
        else:
            parts.append(part)
            node = node.get(part, {}) if isinstance(node, dict) else {}
    line = _line_of(text, found.get("tenants"), found.get("sources"), str(loc[-1]) if loc else "")
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {' '.join(parts)}: {error['msg']}"


def _line_of(text: str, tenant: int | None, source: int | None, key: str) -> int | None:
    """The line of ``key`` in the tenant's (and source's) table, else of that table's header."""
    lines = text.splitlines()
    start, seen_t, seen_s = 0, -1, -1
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped == "[[tenants]]":
            seen_t, seen_s = seen_t + 1, -1
            if seen_t == tenant and source is None:
                start = number
        elif stripped.startswith("[[tenants.sources]]") and seen_t == tenant:
            seen_s += 1
            if seen_s == source:
                start = number
    if tenant is None:
        return None
    for number in range(start + 1, len(lines)):
        if lines[number].lstrip().startswith("["):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[number]):
            return number + 1
    return start + 1


async def import_file(conn: asyncpg.Connection, control: str, path: Path) -> list[str]:
    """Store the file's tenants as the API's (new or replaced); their ids."""
    config = load_tenants(path)
    login = await conn.fetchval("SELECT session_user")
    async with conn.transaction():
        for tenant in config.tenants:
            before = await conn.fetchval(
                f'SELECT config FROM "{control}".{TABLE} WHERE tenant_id = $1', tenant.id
            )
            await conn.execute(
                f'INSERT INTO "{control}".{TABLE} (tenant_id, config) VALUES ($1, $2::jsonb)'
                " ON CONFLICT (tenant_id) DO UPDATE SET config = excluded.config,"
                f" version = {TABLE}.version + 1, updated_at = now()",
                tenant.id, tenant.model_dump_json(),
            )  # fmt: skip
            await conn.execute(
                f'INSERT INTO "{control}".api_audit (token_id, token_name, tenant_id, action,'
                " target, before, after) VALUES ($1, $2, $3, 'tenant_imported', $4, $5::jsonb,"
                " $6::jsonb)",
                CLI_TOKEN, f"cli ({login})", tenant.id, f"tenants/{tenant.id}", before,
                tenant.model_dump_json(),
            )  # fmt: skip
    return [tenant.id for tenant in config.tenants]


async def export_toml(conn: asyncpg.Connection, control: str) -> str:
    rows = await conn.fetch(f'SELECT config FROM "{control}".{TABLE} ORDER BY tenant_id')
    tenants = [
        Tenant.model_validate(orjson.loads(r["config"])).model_dump(
            mode="json", exclude_defaults=True
        )
        for r in rows
    ]
    return tomli_w.dumps({"tenants": tenants})
