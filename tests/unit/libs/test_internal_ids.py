"""The fast internal ids are exactly the uuid5 ids they replace, as UUIDs and as text."""

from __future__ import annotations

import random
import uuid

from rostersync_libs.events import EntityType
from rostersync_libs.identities import IdentityDecision, Reason
from rostersync_libs.ids import ROSTERSYNC_NAMESPACE, internal_id, internal_id_text
from rostersync_mapper.identity_map import DEFAULT_ID_CACHE_SIZE, IdentityMap, default_id_text


def _names(count: int) -> list[str]:
    rng = random.Random(20240607)
    alphabet = "abcXYZ019-_.:/ é漢\x1f😀"
    fixed = ["", "0", "usr-0000001", "org-es1-crs-KG-homeroom-1-e0", "ü" * 50, "x" * 300]
    return fixed + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(count)
    ]


def test_internal_id_is_the_uuid5_of_tenant_entity_and_sourced_id() -> None:
    for index, name in enumerate(_names(3000)):
        entity = list(EntityType)[index % len(EntityType)]
        tenant = f"tenant-{index % 7}"
        expected = uuid.uuid5(ROSTERSYNC_NAMESPACE, f"{tenant}\x1f{entity.value}\x1f{name}")
        got = internal_id(tenant, entity, name)
        assert got == expected
        assert got.version == 5
        assert got.variant == uuid.RFC_4122
        assert internal_id_text(tenant, entity, name) == str(expected)


def test_identity_map_text_ids_follow_decisions_and_default_ids() -> None:
    ids = IdentityMap()
    app_id = uuid.uuid4()
    assert ids.internal_id_text("t", EntityType.USER, "u1") == str(
        internal_id("t", EntityType.USER, "u1")
    )
    ids.apply(
        IdentityDecision(
            tenant="t",
            entity=EntityType.USER,
            sourced_id="u1",
            internal_id=app_id,
            reason=Reason.CROSSWALK,
        )
    )
    # A decision wins over the cached default id, in both forms.
    assert ids.internal_id("t", EntityType.USER, "u1") == app_id
    assert ids.internal_id_text("t", EntityType.USER, "u1") == str(app_id)
    # The same sourcedId of another entity or tenant keeps its default id.
    assert ids.internal_id_text("t", EntityType.ORG, "u1") == str(
        internal_id("t", EntityType.ORG, "u1")
    )
    assert ids.internal_id_text("t2", EntityType.USER, "u1") == str(
        internal_id("t2", EntityType.USER, "u1")
    )
    ids.withdraw(("t", "users", "u1"))
    assert ids.internal_id_text("t", EntityType.USER, "u1") == str(
        internal_id("t", EntityType.USER, "u1")
    )


def test_default_id_cache_is_bounded() -> None:
    ids = IdentityMap()
    for n in range(DEFAULT_ID_CACHE_SIZE + 500):
        ids.internal_id_text("bounded", EntityType.USER, f"u{n}")
    info = default_id_text.cache_info()
    assert info.maxsize == DEFAULT_ID_CACHE_SIZE
    assert info.currsize <= DEFAULT_ID_CACHE_SIZE
