"""Checks of stac-zarr's search options: the area (bbox, GeoJSON geometry), the CRS code and the time interval.

Shared by the config (``specs``), the search and the plan, so each reports a bad option the same way; standard
library only, so the light manifest may import it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["GEOMETRY_TYPES", "check_bbox", "check_geometry", "check_interval", "epsg_code", "parse_time"]

_EPSG = re.compile(r"^\s*(?:EPSG:)?(\d{4,6})\s*$", re.IGNORECASE)
#: GeoJSON geometry types whose ``coordinates`` the search reads.
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")


def epsg_code(value: str | int) -> int:
    """``"EPSG:32633"``, ``"32633"`` or ``32633`` -> 32633; anything else is a ValueError naming option 'crs'."""
    match = _EPSG.match(str(value))
    if not match:
        raise ValueError(f"option 'crs' {value!r} is not an EPSG code; expected e.g. 'EPSG:32633'")
    return int(match.group(1))


def _check_lon_lat(lon: float, lat: float, what: str) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"{what} holds a non-finite coordinate ({lon}, {lat})")
    if not -90 <= lat <= 90:
        raise ValueError(f"{what} has latitude {lat}, outside [-90, 90]; expected lon/lat degrees")
    if not -180 <= lon <= 180:
        raise ValueError(f"{what} has longitude {lon}, outside [-180, 180]; expected lon/lat degrees")


def check_bbox(bbox: Sequence[float]) -> None:
    """[west, south, east, north] in lon/lat degrees, west < east and south < north."""
    if len(bbox) != 4:
        raise ValueError(f"option 'bbox' needs 4 numbers [west, south, east, north], got {list(bbox)}")
    west, south, east, north = (float(v) for v in bbox)
    _check_lon_lat(west, south, "option 'bbox'")
    _check_lon_lat(east, north, "option 'bbox'")
    if not (west < east and south < north):
        raise ValueError(f"option 'bbox' {list(bbox)} is empty or inverted; expected [west, south, east, north] with "
                         "west < east and south < north (boxes across the antimeridian are not supported)")


def check_geometry(geom: Any) -> None:
    """A GeoJSON geometry of lon/lat positions that the search can read."""
    kind = geom.get("type") if isinstance(geom, dict) else None
    if kind not in GEOMETRY_TYPES or "coordinates" not in geom:
        raise ValueError(f"option 'intersects' is not a GeoJSON geometry; expected a table with 'type' (one of "
                         f"{', '.join(GEOMETRY_TYPES)}) and 'coordinates', got {geom!r}"[:400])
    positions = 0

    def walk(c: Any) -> None:
        nonlocal positions
        if isinstance(c, (list, tuple)) and len(c) >= 2 and all(isinstance(v, (int, float)) for v in c):
            _check_lon_lat(float(c[0]), float(c[1]), "option 'intersects'")
            positions += 1
        elif isinstance(c, (list, tuple)):
            for sub in c:
                walk(sub)
        else:
            raise ValueError(f"option 'intersects' has coordinate {c!r}; expected [lon, lat] positions")

    walk(geom["coordinates"])
    if not positions:
        raise ValueError(f"option 'intersects' {kind} has no coordinates")


def parse_time(text: str, end: bool) -> dt.datetime | None:
    """An RFC 3339 instant or date (a bare date covers its whole day: ``end`` picks its last instant); ``..`` open."""
    if text in ("", ".."):
        return None
    if len(text) == 10:  # a bare date covers the whole day
        day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return day + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if end else day
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def check_interval(interval: str) -> None:
    """An RFC 3339 instant or ``start/end`` interval (``..`` for an open end), start not after end."""
    start_s, slash, end_s = interval.partition("/")
    try:
        start = parse_time(start_s, end=False)
        end = parse_time(end_s if slash else start_s, end=True)
    except ValueError:
        raise ValueError(f"option 'datetime' {interval!r} is not an RFC 3339 instant or interval; expected e.g. "
                         "'2020-06-01', '2020-01-01T10:00:00Z' or '2020-01-01/2020-12-31' ('..' for an open end)") from None
    if slash and start is None and end is None:
        raise ValueError(f"option 'datetime' {interval!r} is open at both ends; give a start or an end")
    if start is not None and end is not None and start > end:
        raise ValueError(f"option 'datetime' {interval!r} starts after it ends; expected 'start/end'")
