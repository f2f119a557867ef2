"""A OneRoster 1.1/1.2 REST server over any CSV bundle, for tests and demos (in memory).

Serves ``/ims/oneroster/v1p1`` (OAuth 1.0a or OAuth 2 bearer) and
``/ims/oneroster/rostering/v1p2`` (OAuth 2 client credentials), with paging, filters, sorting,
field selection, mutations over time and fault injection. See docs/oneroster-server.md.
"""

from rostersync_oneroster_server.auth import AuthError, TokenIssuer, verify_oauth1
from rostersync_oneroster_server.data import RosterData, write_bundle
from rostersync_oneroster_server.faults import Faults, RequestRecord
from rostersync_oneroster_server.server import OneRosterServer

__all__ = [
    "AuthError",
    "Faults",
    "OneRosterServer",
    "RequestRecord",
    "RosterData",
    "TokenIssuer",
    "verify_oauth1",
    "write_bundle",
]
