"""Where a US ZIP code is, offline: the `zipcodes` package ships every ZIP's centroid and time zone. The
nearest centers by great-circle distance (miles); no map tiles, no network."""

import heapq
import math
import re
from dataclasses import dataclass
from functools import lru_cache

from companion.app.core.problems import Problem

EARTH_MILES = 3958.8
ZIP = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class Place:
    """A ZIP code's centroid, city, state and zone."""

    zip: str
    lat: float
    lon: float
    city: str
    state: str
    tz: str


@lru_cache(maxsize=1)
def _table() -> dict[str, Place]:
    import zipcodes

    out = {}
    for z in zipcodes.list_all():
        try:
            lat, lon = float(z["lat"]), float(z["long"])
        except (KeyError, TypeError, ValueError):
            continue
        out[z["zip_code"]] = Place(z["zip_code"], lat, lon, z.get("city") or "", z.get("state") or "",
                                   z.get("timezone") or "")
    return out


def place(zip_code: str) -> Place:
    """The place of a 5-digit ZIP code (422 when malformed or unknown)."""
    zip_code = (zip_code or "").strip()
    if not ZIP.match(zip_code):
        raise Problem(422, "invalid-zip", "a ZIP code is 5 digits", field="zip")
    found = _table().get(zip_code)
    if found is None:
        raise Problem(422, "unknown-zip", "no such US ZIP code", field="zip")
    return found


def miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in miles (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_MILES * math.asin(min(1.0, math.sqrt(h)))


def nearest(origin: Place, points: list[tuple[int, float, float]], k: int = 10) -> list[tuple[float, int]]:
    """The k nearest of points (id, lat, lon) to origin, as (miles, id), nearest first."""
    lat0, lon0 = math.radians(origin.lat), math.radians(origin.lon)
    c0 = math.cos(lat0)
    sin, cos, asin, sqrt, rad = math.sin, math.cos, math.asin, math.sqrt, math.radians

    def dist(p: tuple[int, float, float]) -> float:
        la, lo = rad(p[1]), rad(p[2])
        h = sin((la - lat0) / 2) ** 2 + c0 * cos(la) * sin((lo - lon0) / 2) ** 2
        return 2 * EARTH_MILES * asin(min(1.0, sqrt(h)))

    best = heapq.nsmallest(k, points, key=dist)
    return [(dist(p), p[0]) for p in best]
