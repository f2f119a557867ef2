"""The OneRoster rostering read endpoints of one API version (1.1 or 1.2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from rostersync_oneroster_server import query
from rostersync_oneroster_server.data import RosterData
from rostersync_oneroster_server.json_shapes import JSON, Shaper, fields_of, has_role

V1P1 = "/ims/oneroster/v1p1"
V1P2 = "/ims/oneroster/rostering/v1p2"
Predicate = Callable[[JSON], bool] | None


@dataclass(frozen=True)
class Collection:
    entity: str  # the CSV file's stem
    plural: str  # the envelope key of a list
    single: str  # the envelope key of one object
    keep: Predicate = None  # a subset of the entity (/schools, /students…)


def _type_is(value: str) -> Predicate:
    return lambda obj: obj.get("type") == value


def _role_is(value: str) -> Predicate:
    return lambda obj: has_role(obj, value)


COLLECTIONS = {
    "orgs": Collection("orgs", "orgs", "org"),
    "schools": Collection("orgs", "orgs", "org", _type_is("school")),
    "academicSessions": Collection("academicSessions", "academicSessions", "academicSession"),
    "terms": Collection(
        "academicSessions", "academicSessions", "academicSession", _type_is("term")
    ),
    "gradingPeriods": Collection(
        "academicSessions", "academicSessions", "academicSession", _type_is("gradingPeriod")
    ),
    "courses": Collection("courses", "courses", "course"),
    "classes": Collection("classes", "classes", "class"),
    "users": Collection("users", "users", "user"),
    "students": Collection("users", "users", "user", _role_is("student")),
    "teachers": Collection("users", "users", "user", _role_is("teacher")),
    "enrollments": Collection("enrollments", "enrollments", "enrollment"),
    "demographics": Collection("demographics", "demographics", "demographics"),
}


def imsx_error(status: int, code_minor: str, description: str, **headers: str) -> web.Response:
    """The spec's error payload (imsx_StatusInfo), codeMajor failure, severity error."""
    body = {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": code_minor,
                }
            ]
        },
    }
    return web.json_response(body, status=status, headers=headers)


class VersionApi:
    """Serves one version's collections from the shared data, caching the JSON objects."""

    def __init__(
        self,
        data: RosterData,
        version: str,
        default_limit: int,
        max_limit: int,
        given: Mapping[str, list[JSON]] | None = None,
    ) -> None:
        self.data = data
        # JSON objects by entity, served as they are (never shaped, never cached: a test may
        # change them between requests); None: the bundle's records, shaped.
        self.given = given
        self.version = version
        self.prefix = V1P1 if version == "1.1" else V1P2
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.shaper: Shaper | None = None
        self._cache: dict[str, dict[str, JSON]] = {}
        self._generation = -1

    def set_base_url(self, base_url: str) -> None:
        self.shaper = Shaper(self.data, self.version, base_url + self.prefix)
        self._cache.clear()

    def _shape(self, entity: str, sourced_id: str) -> JSON | None:
        if self.given is not None:
            found = (o for o in self.given.get(entity, []) if o.get("sourcedId") == sourced_id)
            return next(found, None)
        if self._generation != self.data.generation:
            self._cache.clear()
            self._generation = self.data.generation
        cache = self._cache.setdefault(entity, {})
        if sourced_id not in cache:
            record = self.data.get(entity, sourced_id)
            if record is None or self.shaper is None:
                return None
            cache[sourced_id] = self.shaper.to_json(entity, record)
        return cache[sourced_id]

    def _all(self, entity: str) -> list[JSON]:
        if self.given is not None:
            return list(self.given.get(entity, []))
        out = []
        for record in self.data.ordered(entity):
            obj = self._shape(entity, record.sourced_id)
            if obj is not None:
                out.append(obj)
        return out

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(self.prefix + "/{collection}", self.list_handler),
            web.get(self.prefix + "/{collection}/{sourced_id}", self.one_handler),
        ]

    def collection(self, request: web.Request) -> Collection:
        found = COLLECTIONS.get(request.match_info["collection"])
        if found is None:
            raise web.HTTPNotFound()
        return found

    async def list_handler(self, request: web.Request) -> web.Response:
        coll = self.collection(request)
        params = request.query
        known = fields_of(coll.entity, self.version)
        limit, offset = query.parse_paging(
            params.get("limit"), params.get("offset"), self.default_limit, self.max_limit
        )
        flt = query.parse_filter(params["filter"], known) if "filter" in params else None
        fields = query.parse_fields(params["fields"], known) if "fields" in params else None
        sort = params.get("sort")
        if coll.keep is None and flt is None and not sort and self.given is None:
            records = self.data.ordered(coll.entity)  # the fast path: shape only the page
            total = len(records)
            page = [
                self._shape(coll.entity, r.sourced_id) for r in records[offset : offset + limit]
            ]
            objs = [o for o in page if o is not None]
        else:
            matching = [
                o
                for o in self._all(coll.entity)
                if (coll.keep is None or coll.keep(o)) and (flt is None or query.matches(flt, o))
            ]
            if sort:
                matching = query.sort_objects(matching, sort, params.get("orderBy", "asc"), known)
            total = len(matching)
            objs = matching[offset : offset + limit]
        if fields is not None:
            objs = [query.select_fields(o, fields) for o in objs]
        headers = {"X-Total-Count": str(total), "Link": self._links(request, total, limit, offset)}
        return web.json_response({coll.plural: objs}, headers=headers)

    async def one_handler(self, request: web.Request) -> web.Response:
        coll = self.collection(request)
        sourced_id = request.match_info["sourced_id"]
        obj = self._shape(coll.entity, sourced_id)
        if obj is None or (coll.keep is not None and not coll.keep(obj)):
            return imsx_error(
                404, "unknownobject", f"no {coll.single} with sourcedId {sourced_id!r}"
            )
        if "fields" in request.query:
            known = fields_of(coll.entity, self.version)
            obj = query.select_fields(obj, query.parse_fields(request.query["fields"], known))
        return web.json_response({coll.single: obj})

    def _links(self, request: web.Request, total: int, limit: int, offset: int) -> str:
        base = f"{request.scheme}://{request.host}{request.path}"
        others: list[tuple[str, Any]] = [
            (k, v) for k, v in request.query.items() if k not in ("limit", "offset")
        ]
        return ", ".join(
            f'<{base}?{urlencode([*others, ("limit", limit), ("offset", off)], quote_via=quote)}>; rel="{rel}"'
            for rel, off in query.page_offsets(total, limit, offset).items()
        )
