"""Reading side messages (findings, run events, commands): a bad one is logged and skipped.

Only its position is logged, never its content; records on the mapped topic are different (an
undecodable one is kept as a rejection, see rejections.py).
"""

from __future__ import annotations

import logging
from typing import TypeVar

from aiokafka import ConsumerRecord
from pydantic import TypeAdapter, ValidationError

log = logging.getLogger(__name__)

T = TypeVar("T")


def decode_or_skip(
    adapter: TypeAdapter[T], message: ConsumerRecord[bytes, bytes], what: str
) -> T | None:
    try:
        return adapter.validate_json(message.value or b"")
    except ValidationError:
        log.warning(
            "skipped an undecodable %s at %s[%d]@%d",
            what,
            message.topic,
            message.partition,
            message.offset,
        )
        return None
