"""Where a US ZIP code is, offline: the `zipcodes` package ships every ZIP's centroid and time zone. The
nearest centers by great-circle distance (miles); no map tiles, no network."""

import bisect
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


class Index:
    """Points (id, lat, lon, tags) sorted by latitude: a search looks at a latitude band around the origin,
    widened until the band holds enough candidates nearer than anything outside it."""

    def __init__(self, points: list[tuple[int, float, float, frozenset[str]]]):
        self.points = sorted(points, key=lambda p: p[1])
        self.lats = [p[1] for p in self.points]

    def __len__(self) -> int:
        return len(self.points)

    def nearest(self, origin: Place, k: int = 10, tag: str = "") -> list[tuple[float, int]]:
        """The k nearest points (with tag, when given) as (miles, id), nearest first. Candidates are picked by a
        flat-earth distance in degrees (longitude scaled by the origin's latitude and wrapped at the
        antimeridian), four times as many as asked, then ranked by the great-circle distance."""
        lat0, lon0 = origin.lat, origin.lon
        c0 = math.cos(math.radians(lat0))
        need = max(4 * k, k + 20)
        band = 1.0
        while True:
            lo = bisect.bisect_left(self.lats, lat0 - band)
            hi = bisect.bisect_right(self.lats, lat0 + band)
            flat = [((la - lat0) ** 2 + (c0 * ((ln - lon0 + 540.0) % 360.0 - 180.0)) ** 2, cid, la, ln)
                    for cid, la, ln, tags in self.points[lo:hi] if not tag or tag in tags]
            found = heapq.nsmallest(need, flat)
            # anything outside the band is more than `band` degrees of latitude away
            if band >= 180 or (len(found) >= need and found[-1][0] <= band * band):
                break
            band *= 2
        ranked = sorted((miles(lat0, lon0, la, ln), cid) for _f, cid, la, ln in found)
        return ranked[:k]
