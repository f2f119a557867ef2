"""OneRoster CSV files and their columns, in the specification's order.

Only the files the pipeline ingests so far are listed; each entry names the entity type its rows
become and the columns that must hold a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from rostersync_libs.envelope import EntityType


@dataclass(frozen=True)
class FileSpec:
    file_name: str
    entity: EntityType
    columns: tuple[str, ...]
    required: frozenset[str]
    enums: dict[str, frozenset[str]]


ORGS_1_1 = FileSpec(
    file_name="orgs.csv",
    entity=EntityType.ORG,
    columns=(
        "sourcedId",
        "status",
        "dateLastModified",
        "name",
        "type",
        "identifier",
        "parentSourcedId",
    ),
    required=frozenset({"sourcedId", "name", "type"}),
    enums={
        "type": frozenset({"department", "school", "district", "local", "state", "national"}),
    },
)

USERS_1_1 = FileSpec(
    file_name="users.csv",
    entity=EntityType.USER,
    columns=(
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
    required=frozenset(
        {"sourcedId", "enabledUser", "orgSourcedIds", "role", "username", "givenName", "familyName"}
    ),
    enums={
        "role": frozenset(
            {
                "administrator",
                "aide",
                "guardian",
                "parent",
                "proctor",
                "relative",
                "student",
                "teacher",
            }
        ),
        "enabledUser": frozenset({"true", "false"}),
    },
)

# Files in the order the fetcher publishes them: referenced entities before the ones that refer.
FILES_1_1: tuple[FileSpec, ...] = (ORGS_1_1, USERS_1_1)
BY_ENTITY: dict[EntityType, FileSpec] = {spec.entity: spec for spec in FILES_1_1}

# Columns that hold comma-separated lists inside one field.
LIST_COLUMNS = frozenset(
    {"orgSourcedIds", "agentSourcedIds", "grades", "userIds", "termSourcedIds", "subjects"}
)

# Never copied into events: a password has no business travelling through the pipeline.
DROPPED_COLUMNS = frozenset({"password"})
