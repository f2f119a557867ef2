"""How a middle stage reads one input message: its event, or why it is none.

A message that is not an event of the contract (no value, not JSON, not one of its kinds, a part
missing) or claims another tenant than its key's is dead-lettered whole by the stage with the
finding :func:`read` gives. The finding's text names the field at fault, never a value: a value
may be a record's content, and findings outlive a tenant's purge in logs and reports.
"""

from __future__ import annotations

import re

from rostersync_libs import events
from rostersync_libs.events import Event
from rostersync_libs.finding_codes import Code
from rostersync_libs.findings import Finding, Severity, clip
from rostersync_libs.sealing import tenant_of_or_none

# msgspec quotes the value it refused ("Invalid enum value 'x' - at `$.records[3].entity`"): the
# quoted part is left out; types and paths (between backticks) are kept.
_QUOTED = re.compile(r"'.*'", re.DOTALL)
_MISSING = "missing required field"


def schema_error(exc: events.DecodeError) -> tuple[Code, str]:
    """The code and text of a message that is not an event, without the values it holds."""
    text = _QUOTED.sub("'…'", str(exc))
    if _MISSING in text:  # an event of a known kind without a part its kind needs
        return Code.ENVELOPE_INCOMPLETE, clip(f"an event without a required part: {text}", 400)
    return Code.ENVELOPE_UNDECODABLE, clip(f"not a rostersync event: {text}", 400)


def read(value: bytes | None, key: bytes | None) -> Event | Finding:
    """The message's event, or the finding that dead-letters it."""
    if value is None:
        code, text = Code.EMPTY_MESSAGE, "a message without a value (a tombstone), not an event"
    else:
        try:
            event = events.decode(value)
        except events.DecodeError as exc:
            code, text = schema_error(exc)
        else:
            if tenant_of_or_none(key) == event.tenant:
                return event
            # Sealed with one tenant's key, claiming another tenant.
            code = Code.ENVELOPE_TENANT_MISMATCH
            text = "the event's tenant is not the tenant of its key"
    return Finding(code=code, severity=Severity.ERROR, message=text)
