"""Who may do what on Kafka: one principal per service and one for the CLI, each allowed exactly the
topics it reads and writes and its consumer group, nothing else (docs/security.md).

The table is derived from the topic names (:mod:`rostersync_libs.topics`, with the deployment's
prefix) and the consumer groups (:meth:`ServiceSettings.consumer_group`); a test holds it against
what each service's code subscribes to and sends. Kafka implies Describe from Read and Write, so
only Read and Write are granted. No principal may create, delete or configure a topic, or touch
the cluster: an administrator creates the topics (``ensure_topics`` with an admin's login) and
these ACLs (:func:`create_acls`, or the ``kafka-acls.sh`` lines of :func:`acl_commands`).

An idempotent producer (every producer here) needs no cluster right: since Kafka 3.0 (KIP-679)
Write on any topic is enough for its producer id.

    python -m rostersync_libs.kafka_acls           # the kafka-acls.sh commands of this deployment
    python -m rostersync_libs.kafka_acls --apply   # with an admin's login: topics, then the ACLs
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from rostersync_libs.kafka import client_options, ensure_topics
from rostersync_libs.settings import ServiceSettings

SERVICES = ("fetcher", "validator", "mapper", "writer", "cli")


class ResourceType(IntEnum):  # Kafka's protocol values
    TOPIC = 2
    GROUP = 3


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4


ALLOW = 3  # permission type


@dataclass(frozen=True)
class Access:
    """What one principal may do: topics it reads, topics it writes, the consumer group it joins."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    group: str | None = None
    group_prefixed: bool = False  # the group is a prefix (the writer's follow its schema)


@dataclass(frozen=True)
class Acl:
    principal: str  # "User:validator"
    resource: ResourceType
    name: str
    pattern: PatternType
    operation: Operation


def access_table(settings: ServiceSettings) -> dict[str, Access]:
    """Each service's (and the CLI's) access, by service name."""
    t = settings.topics
    return {
        # Takes sync commands (its group); publishes records, file facts and end markers, and run
        # events; keeps REST sources' high-water marks on its compacted topic (read at start);
        # asks again, on the command topic, for a run whose fetcher died (lapsed leases).
        "fetcher": Access(
            reads=(t.commands, t.fetch_state),
            writes=(t.fetched, t.runs, t.fetch_state, t.commands),
            group=settings.consumer_group("fetcher"),
        ),
        # Reads fetched; sends what passes on, what it rejects and what it found. Nothing else:
        # it cannot issue a command, forge a run event or write past the mapper.
        "validator": Access(
            reads=(t.fetched,),
            writes=(t.validated, t.validator_dlq, t.findings),
            group=settings.consumer_group("validator"),
        ),
        # Reads validated; sends mapped records, its dead letters and findings; reads and writes
        # the identity decisions (every instance reads the whole topic, without a group).
        "mapper": Access(
            reads=(t.validated, t.identities),
            writes=(t.mapped, t.mapper_dlq, t.findings, t.identities),
            group=settings.consumer_group("mapper"),
        ),
        # Reads what ends in PostgreSQL (records, dead letters, findings, run events, hold
        # decisions); writes only the change feed (its relay). Its group follows its schema
        # (rostersync-writer-<schema>, a replay's too): a prefix. A replay (``rostersync
        # replay``) runs the writer: its login.
        "writer": Access(
            reads=(t.mapped, t.validator_dlq, t.mapper_dlq, t.findings, t.runs, t.commands),
            writes=(t.changes,),
            group=settings.consumer_group("writer-"),
            group_prefixed=True,
        ),
        # An operator's commands (sync, cancel, hold decisions) and crosswalk entries, which are
        # identity decisions by design (read first, to refuse one app id for two records). No
        # record topic, no run event, no group: its reports come from PostgreSQL. ``tenants
        # purge`` withdraws a tenant's keys from both compacted topics (tombstones).
        "cli": Access(
            reads=(t.identities, t.fetch_state),
            writes=(t.commands, t.identities, t.fetch_state),
        ),
    }


def acls(settings: ServiceSettings, principals: Mapping[str, str] | None = None) -> list[Acl]:
    """Every ACL of the deployment; ``principals`` maps a service to its user (default: its name)."""
    found: list[Acl] = []
    for service, access in access_table(settings).items():
        principal = f"User:{(principals or {}).get(service, service)}"
        for topic in access.reads:
            found.append(
                Acl(principal, ResourceType.TOPIC, topic, PatternType.LITERAL, Operation.READ)
            )
        for topic in access.writes:
            found.append(
                Acl(principal, ResourceType.TOPIC, topic, PatternType.LITERAL, Operation.WRITE)
            )
        if access.group is not None:
            pattern = PatternType.PREFIXED if access.group_prefixed else PatternType.LITERAL
            found.append(Acl(principal, ResourceType.GROUP, access.group, pattern, Operation.READ))
    return found


async def create_acls(admin: ServiceSettings, wanted: list[Acl]) -> None:
    """Create ACLs with an administrator's login (``admin``: its settings); idempotent.

    aiokafka has no create_acls: this sends Kafka's CreateAcls request (v1, which knows prefixed
    patterns) through the admin client's connection, one ACL per request.
    """
    client = AIOKafkaAdminClient(**client_options(admin))
    await client.start()
    try:
        node = client._client.get_random_node()  # any broker forwards ACL changes to KRaft
        responses = await asyncio.gather(
            *(
                client._client.send(
                    node,
                    CreateAclsRequest(
                        int(acl.resource),
                        acl.name,
                        int(acl.pattern),
                        acl.principal,
                        "*",
                        int(acl.operation),
                        ALLOW,
                    ),
                )
                for acl in wanted
            )
        )
        for acl, response in zip(wanted, responses, strict=True):
            for code, message in response.creation_responses:
                if code != 0:
                    raise RuntimeError(
                        f"could not create {acl}: Kafka error code {code} ({message})"
                    )
    finally:
        await client.close()


def acl_commands(
    settings: ServiceSettings, principals: Mapping[str, str] | None = None
) -> list[str]:
    """The same ACLs as ``kafka-acls.sh`` command lines (for a managed service's operator)."""
    lines = []
    for acl in acls(settings, principals):
        kind = "--topic" if acl.resource is ResourceType.TOPIC else "--group"
        lines.append(
            "kafka-acls.sh --bootstrap-server $BROKERS --command-config admin.properties --add"
            f" --allow-principal {acl.principal} --operation {acl.operation.name.title()}"
            f" {kind} '{acl.name}' --resource-pattern-type {acl.pattern.name.lower()}"
        )
    return lines


async def apply(admin: ServiceSettings, principals: Mapping[str, str] | None = None) -> int:
    """As an administrator: the deployment's topics, then every ACL. Returns how many ACLs."""
    await ensure_topics(admin)
    wanted = acls(admin, principals)
    await create_acls(admin, wanted)
    return len(wanted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="The deployment's Kafka ACLs (prefix and login from the environment)."
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="create the topics and ACLs now, logged in as the environment's (admin) user",
    )
    parser.add_argument(
        "--principal",
        action="append",
        default=[],
        metavar="SERVICE=USER",
        help="the user a service logs in as, when not its name (repeatable)",
    )
    args = parser.parse_args(argv)
    principals = dict(item.split("=", 1) for item in args.principal)
    unknown = set(principals) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s) {sorted(unknown)}: one of {', '.join(SERVICES)}")
    settings = ServiceSettings()
    if args.apply:
        count = asyncio.run(apply(settings, principals))
        print(f"{count} ACLs in place on {settings.kafka_bootstrap_servers}")
    else:
        print("\n".join(acl_commands(settings, principals)))


if __name__ == "__main__":
    main()
