"""Where a US ZIP code is, offline: the `zipcodes` package ships every ZIP's centroid and time zone. The
nearest centers by great-circle distance (miles), searched in the database through a bounding box on
latitude and longitude that widens until it holds enough; no map tiles, no network."""

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


def bounds(lat0: float, lon0: float, radius: float) -> tuple[float, float, list[tuple[float, float]] | None]:
    """A latitude band and longitude ranges (None: every longitude) that hold every point within `radius` miles
    of (lat0, lon0) on the sphere: the band is the radius in degrees of latitude; the longitude half-width is
    asin(sin r / cos lat0), the meridians tangent to the circle (every longitude when the circle holds a pole).
    Ranges that pass the antimeridian are split in two. A hair wider than exact, never narrower."""
    r = radius / EARTH_MILES  # radians
    if r >= math.pi:
        return -90.0, 90.0, None
    dlat = math.degrees(r) + _EPS
    lo, hi = lat0 - dlat, lat0 + dlat
    if lo <= -90.0 or hi >= 90.0:
        return max(lo, -90.0), min(hi, 90.0), None
    s = math.sin(r) / math.cos(math.radians(lat0))
    if s >= 1.0:
        return lo, hi, None
    dlon = math.degrees(math.asin(s)) + _EPS
    if dlon >= 180.0:
        return lo, hi, None
    west, east = lon0 - dlon, lon0 + dlon
    if west < -180.0:
        return lo, hi, [(west + 360.0, 180.0), (-180.0, east)]
    if east > 180.0:
        return lo, hi, [(west, 180.0), (-180.0, east - 360.0)]
    return lo, hi, [(west, east)]


_EPS = 1e-7  # degrees (about a centimetre): rounding never leaves a point on the edge out
WORLD = math.pi * EARTH_MILES  # a radius that holds every point


def next_radius(radius: float, found: int, k: int) -> float:
    """The radius to try after `found` of the k wanted were within `radius`: scaled by the square root of the
    shortfall (the count grows with the area), at least 1.5 and at most 4 times."""
    if found <= 0:
        return radius * 4
    return radius * max(1.5, min(4.0, math.sqrt(k / found) * 1.25))
