"""STAC item search: a STAC API through pystac-client, or a static ``catalog.json`` walked with pystac.

Both paths apply the same filters, so a search gives the same items whether the catalog is served or
read from disk. ``query`` and CQL2-JSON ``filter`` are sent to an API that declares support for them and
are always re-applied here too (some servers, e.g. rustac's memory backend, do not implement them).
Results are sorted by (datetime, id) so an ingest is a pure function of the catalog and the search.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac

from registry_core import RegistryCoreError
from registry_gfm.ingest.validators import parse_time

__all__ = ["SearchError", "SearchParams", "matches_filter", "matches_query", "search_items"]

#: HTTP statuses worth retrying: throttling and transient server errors.
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


class SearchError(RegistryCoreError, RuntimeError):
    """A STAC search failed or found nothing; the message names the catalog and the parameters."""


@dataclass(frozen=True)
class SearchParams:
    """What to search for; every field is optional except the catalog."""

    catalog: str
    collections: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    intersects: Mapping[str, Any] | None = None
    datetime: str | None = None
    query: Mapping[str, Any] = field(default_factory=dict)
    filter: Mapping[str, Any] = field(default_factory=dict)
    max_items: int | None = None
    ids: tuple[str, ...] = ()
    #: Property to order by before ``max_items`` applies (``-`` prefix: descending); the result is time-ordered.
    sortby: str | None = None

    def describe(self) -> dict[str, Any]:
        """The parameters as plain JSON (recorded in the datacube's provenance)."""
        return {
            "catalog": self.catalog,
            "collections": list(self.collections),
            "bbox": list(self.bbox) if self.bbox else None,
            "intersects": dict(self.intersects) if self.intersects else None,
            "datetime": self.datetime,
            "query": dict(self.query),
            "filter": dict(self.filter),
            "max_items": self.max_items,
            "ids": list(self.ids),
            "sortby": self.sortby,
        }


def is_api(catalog: str) -> bool:
    """True for an http(s) URL that is not a ``.json`` document (a static catalog can be served too)."""
    return catalog.startswith(("http://", "https://")) and not catalog.endswith(".json")


def search_items(params: SearchParams, retries: int = 4, timeout: float = 30.0) -> list[pystac.Item]:
    """Items matching ``params``, sorted by (datetime, id); SearchError when none match.

    Each API request waits at most ``timeout`` seconds to connect and for each read, and is retried up to
    ``retries`` times with exponential backoff (0.5 s doubling, at most 10 s) before SearchError names the URL.
    """
    items = _search_api(params, retries, timeout) if is_api(params.catalog) else _search_static(params)
    items = [it for it in items if _matches_local(it, params)]
    items.sort(key=lambda it: (_item_time(it), it.id))
    if params.sortby:
        name = params.sortby.lstrip("+-").removeprefix("properties.")
        missing = [it.id for it in items if _properties(it).get(name) is None]
        if missing:
            raise SearchError(f"cannot sort by {name!r}: STAC items {', '.join(missing[:5])} lack that property")
        items.sort(key=lambda it: _properties(it)[name], reverse=params.sortby.startswith("-"))
    if params.max_items is not None:
        items = items[: params.max_items]
    items.sort(key=lambda it: (_item_time(it), it.id))
    if not items:
        raise SearchError(f"STAC search of {params.catalog} found no items for {_short(params)}; widen bbox/datetime "
                          "or relax query/filter")
    return items


def _short(params: SearchParams) -> str:
    d = {k: v for k, v in params.describe().items() if v not in (None, [], {}) and k != "catalog"}
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "no filters"


def _search_api(params: SearchParams, retries: int, timeout: float) -> list[pystac.Item]:
    # Imported here: pystac-client pulls in requests, which only the API path needs.
    import pystac_client
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    retry = Retry(total=retries, backoff_factor=0.5, backoff_max=10, status_forcelist=RETRY_STATUSES,
                  allowed_methods=None)
    io = StacApiIO(max_retries=retry, timeout=timeout)
    try:
        # Client.open resets the StacApiIO's timeout to its own argument (None: wait forever): pass it there,
        # and set it again on the opened client's IO, so the root request and every search page time out.
        client = pystac_client.Client.open(params.catalog, stac_io=io, timeout=timeout)
        client_io = client._stac_io
        if isinstance(client_io, StacApiIO):
            client_io.timeout = timeout
        kwargs: dict[str, Any] = {"max_items": None}
        if params.collections:
            kwargs["collections"] = list(params.collections)
        if params.bbox:
            kwargs["bbox"] = list(params.bbox)
        if params.intersects:
            kwargs["intersects"] = dict(params.intersects)
        if params.datetime:
            kwargs["datetime"] = params.datetime
        if params.ids:
            kwargs["ids"] = list(params.ids)
        # Server-side filtering only where the server says it can; we re-apply both locally anyway.
        if params.query and client.conforms_to(ConformanceClasses.QUERY):
            kwargs["query"] = dict(params.query)
        if params.filter and client.conforms_to(ConformanceClasses.FILTER):
            kwargs["filter"] = dict(params.filter)
            kwargs["filter_lang"] = "cql2-json"
        found = list(client.search(**kwargs).items())
        if not found:
            _check_collections(client, params)
        return found
    except SearchError:
        raise
    except Exception as exc:  # requests, pystac-client and JSON errors alike: say which URL failed
        raise SearchError(f"STAC search of {params.catalog} failed after {retries} retries: "
                          f"{type(exc).__name__}: {exc}") from exc


def _check_collections(client: Any, params: SearchParams) -> None:
    """After an empty search: SearchError naming a collection the API does not have (with those it has), which
    says more than "found no items"."""
    for wanted in params.collections:
        try:
            there = client.get_collection(wanted) is not None  # None: the API answered 404
        except Exception:  # another refusal (a static catalog's walk, a server error): the search's message stands
            return
        if not there:
            have = sorted(c.id for c in client.get_collections())
            shown = ", ".join(have[:20]) + (f" and {len(have) - 20} more" if len(have) > 20 else "")
            raise SearchError(f"STAC API {params.catalog} has no collection {wanted!r} (it has: {shown or 'none'})") \
                from None


def _search_static(params: SearchParams) -> list[pystac.Item]:
    path = params.catalog
    if not path.startswith(("http://", "https://")) and not Path(path).exists():
        raise SearchError(f"STAC catalog {path} does not exist (expected a catalog.json path or a STAC API URL)")
    try:
        root = pystac.read_file(path)
    except Exception as exc:
        raise SearchError(f"could not read STAC catalog {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(root, pystac.Item):
        return [root]
    if isinstance(root, pystac.ItemCollection):
        return list(root)
    if not isinstance(root, pystac.Catalog):
        raise SearchError(f"{path} is a {type(root).__name__}, expected a STAC catalog or collection")
    out = []
    for item in root.get_items(recursive=True):
        item.make_asset_hrefs_absolute()
        out.append(item)
    return out


def _item_time(item: pystac.Item) -> dt.datetime:
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise SearchError(f"STAC item {item.id!r} has neither datetime nor start_datetime")
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _matches_local(item: pystac.Item, params: SearchParams) -> bool:
    if params.collections and item.collection_id not in params.collections:
        return False
    if params.ids and item.id not in params.ids:
        return False
    if params.bbox and item.bbox and not _bbox_overlap(params.bbox, item.bbox):
        return False
    if params.intersects and item.bbox and not _bbox_overlap(_geometry_bbox(params.intersects), item.bbox):
        return False
    if params.datetime and not _in_interval(item, params.datetime):
        return False
    props = _properties(item)
    return matches_query(props, params.query) and (not params.filter or matches_filter(props, params.filter))


def _properties(item: pystac.Item) -> dict[str, Any]:
    props = dict(item.properties)
    props["datetime"] = _item_time(item)  # comparable with CQL2 timestamps
    props.setdefault("id", item.id)
    props.setdefault("collection", item.collection_id)
    return props


def _bbox_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def _geometry_bbox(geom: Mapping[str, Any]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], (int, float)):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        else:
            for sub in c:
                walk(sub)

    walk(geom["coordinates"])
    return min(xs), min(ys), max(xs), max(ys)


def _in_interval(item: pystac.Item, interval: str) -> bool:
    start_s, _, end_s = interval.partition("/")
    start = parse_time(start_s, end=False)
    end = parse_time(end_s if "/" in interval else start_s, end=True)
    t = _item_time(item)
    return (start is None or t >= start) and (end is None or t <= end)


_QUERY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lte": operator.le, "gt": operator.gt,
    "gte": operator.ge, "in": lambda a, b: a in b, "startsWith": lambda a, b: str(a).startswith(b),
    "endsWith": lambda a, b: str(a).endswith(b), "contains": lambda a, b: b in str(a),
}


def matches_query(props: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """The STAC API ``query`` extension: ``{"eo:cloud_cover": {"lt": 20}}``; a missing property fails."""
    for name, conds in query.items():
        if name not in props:
            return False
        for op, value in conds.items():
            if op not in _QUERY_OPS:
                raise SearchError(f"query operator {op!r} on {name!r} is not supported; use one of {sorted(_QUERY_OPS)}")
            try:
                if not _QUERY_OPS[op](props[name], value):
                    return False
            except TypeError:
                return False
    return True


_CQL_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<>": operator.ne, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


def matches_filter(props: Mapping[str, Any], expr: Mapping[str, Any]) -> bool:
    """A CQL2-JSON filter over item properties: and/or/not, comparisons, ``in``, ``between``, ``isNull``."""
    op = expr.get("op")
    args = list(expr.get("args", []))
    if op in ("and", "or"):
        results = (matches_filter(props, a) for a in args)
        return all(results) if op == "and" else any(results)
    if op == "not":
        return not matches_filter(props, args[0])
    if op == "isNull":
        return _cql_value(props, args[0]) is None
    values = [_cql_value(props, a) for a in args]
    if any(v is None for v in values):
        return False
    try:
        if op in _CQL_COMPARE:
            return _CQL_COMPARE[op](values[0], values[1])
        if op == "in":
            return values[0] in values[1]
        if op == "between":
            return values[1] <= values[0] <= values[2]
    except TypeError:
        return False
    raise SearchError(f"CQL2 filter operator {op!r} is not supported here; use and/or/not, =, <>, <, <=, >, >=, in, "
                      "between, isNull")


def _cql_value(props: Mapping[str, Any], arg: Any) -> Any:
    if isinstance(arg, Mapping):
        if "property" in arg:
            return props.get(arg["property"])
        if "timestamp" in arg:
            return parse_time(arg["timestamp"], end=False)
        if "date" in arg:
            return parse_time(arg["date"], end=False)
    if isinstance(arg, list):
        return [_cql_value(props, a) for a in arg]
    return arg
