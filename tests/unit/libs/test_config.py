from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from rostersync_libs.settings import ServiceSettings
from rostersync_libs.store.migrate import migration_files
from rostersync_libs.tenants import load_tenants


def test_conventional_connection_variables_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("ROSTERSYNC_TOPIC_PREFIX", "staging.")
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "broker:9092"
    assert "pw" not in repr(settings)  # the URL may hold a password: never printed
    assert settings.topics.fetched == "staging.rostersync.records.fetched.v2"


def test_schema_names_are_checked_because_they_are_put_into_sql() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(db_schema='x"; DROP TABLE users; --')


def test_tenant_source_paths_are_relative_to_the_tenants_file(tmp_path: Path) -> None:
    config = tmp_path / "tenants.toml"
    config.write_text(
        '[[tenants]]\nid = "d1"\nname = "D"\n[[tenants.sources]]\nid = "csv"\npath = "b"\n'
    )
    tenant = load_tenants(config).get("d1")
    assert tenant.source().path == (tmp_path / "b").resolve()
    with pytest.raises(KeyError, match="unknown tenant 'zz'"):
        load_tenants(config).get("zz")


def test_migrations_are_numbered_and_ordered() -> None:
    versions = [version for version, _, _ in migration_files()]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_a_rest_source_names_the_collections_it_shares_orgs_and_users_always() -> None:
    from rostersync_libs.tenants import ApiSource

    base = {
        "id": "api", "kind": "oneroster-api", "base_url": "https://sis.example",
        "auth": {"kind": "oauth1", "key": "k", "secret_env": "S"},
    }  # fmt: skip
    assert ApiSource.model_validate(base).reads("demographics")
    shared = ApiSource.model_validate({**base, "collections": ["orgs", "users", "classes"]})
    assert shared.reads("classes")
    assert not shared.reads("demographics")
    with pytest.raises(ValidationError, match="must include orgs and users"):
        ApiSource.model_validate({**base, "collections": ["orgs", "classes"]})
    with pytest.raises(ValidationError, match="Input should be 'orgs'"):
        ApiSource.model_validate({**base, "collections": ["orgs", "users", "grades"]})
