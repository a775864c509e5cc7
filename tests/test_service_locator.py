"""The ZIP locator searched in the database: the bounding box holds every point within its radius (across the
antimeridian and near the pole), the nearest 10 equal a brute-force great-circle ranking of every active center
(with and without a service filter, from Alaska, Hawaii, Puerto Rico, Guam and across the country), and centers
added, closed, reopened, moved or deleted count at the next search. Both backends."""

import datetime as dt
import math
import random

import pytest
from sqlalchemy import delete, insert, select, update

from tests.service_support import make_center

pytest_plugins = ["tests.portal_support"]

EDGES = ["99546", "99723", "99950", "99501", "96813", "96720", "00601", "00901", "00802", "96910", "04401",
         "33040", "98221", "85004"]  # Adak, Utqiagvik, Ketchikan, Anchorage, Honolulu, Hilo, Adjuntas, San Juan,
# St. Thomas, Guam, Bangor, Key West, Anacortes, Phoenix



def _destination(lat, lon, bearing, miles):
    """The point `miles` from (lat, lon) along `bearing` (radians) on the sphere (degrees, lon in -180..180)."""
    from companion.app.service.locator import EARTH_MILES

    d = miles / EARTH_MILES
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def _inside(lat, lon, box):
    lo, hi, lons = box
    return lo <= lat <= hi and (lons is None or any(w <= lon <= e for w, e in lons))


def test_the_box_holds_every_point_within_its_radius():
    """Points just inside the circle, on 72 bearings, are inside the box: near the antimeridian (Adak, Guam),
    far north (Utqiagvik), with radii from a mile to half the earth; and the box is not the whole world when
    the circle is small."""
    from companion.app.service import locator

    origins = [(51.88, -176.66), (13.44, 144.79), (71.29, -156.79), (21.31, -157.86), (18.2, -66.7),
               (44.8, -68.77), (24.55, -81.8), (0.0, 179.99), (-0.5, -179.99), (80.0, 10.0)]
    for lat0, lon0 in origins:
        for radius in (1.0, 50.0, 333.0, 1000.0, 2500.0, 6000.0, 12000.0):
            box = locator.bounds(lat0, lon0, radius)
            for i in range(72):
                lat, lon = _destination(lat0, lon0, 2 * math.pi * i / 72, radius * (1 - 1e-9))
                assert locator.miles(lat0, lon0, lat, lon) <= radius
                assert _inside(lat, lon, box), (lat0, lon0, radius, lat, lon, box)
    lo, hi, lons = locator.bounds(21.31, -157.86, 50.0)
    assert hi - lo < 2 and lons is not None and len(lons) == 1 and lons[0][1] - lons[0][0] < 2
    _lo, _hi, lons = locator.bounds(51.88, -179.5, 100.0)  # across the antimeridian: two ranges
    assert lons is not None and len(lons) == 2 and lons[0][1] == 180.0 and lons[1][0] == -180.0
    assert locator.bounds(40.0, -100.0, locator.WORLD) == (-90.0, 90.0, None)


def _brute(session, origin, k, service):
    """Every active center ranked by great-circle distance (ties by id)."""
    from companion.app.service import locator
    from companion.app.service.models import ServiceCenter

    rows = session.execute(select(ServiceCenter.id, ServiceCenter.lat, ServiceCenter.lon, ServiceCenter.services)
                           .where(ServiceCenter.active.is_(True))).all()
    ranked = sorted((locator.miles(origin.lat, origin.lon, la, lo), cid) for cid, la, lo, sv in rows
                    if not service or service in sv)
    return [(round(d, 1), cid) for d, cid in ranked[:k]]


def _found(session, zip_code, k=10, service=""):
    from companion.app.service import centers

    _origin, found = centers.find(session, zip_code, k, service)
    return [(f.miles, f.center.id) for f in found]


def test_the_nearest_ten_equal_a_brute_force_ranking(world):
    """800 centers at random ZIP codes (a few in Alaska, Hawaii, Puerto Rico and Guam), a rare service on
    every 40th: the locator's ten (and its one, and its fifty) are brute force's, distances included."""
    from companion.app.service import locator
    from companion.app.service.models import ServiceCenter

    rnd = random.Random(11)
    table = locator._table()
    zips = sorted(table)
    spots = [table[z] for z in ("99546", "99703", "96740", "96766", "00680", "00918", "96910")]
    rows = []
    for i in range(800):
        p = spots[i % len(spots)] if i % 50 == 0 else table[rnd.choice(zips)]
        rows.append({"name": "Grid %d" % i, "address": "%d Main St" % i, "zip": p.zip, "lat": p.lat, "lon": p.lon,
                     "tz": p.tz or "America/Chicago", "phone": "", "hours": {"mon": ["08:00", "17:00"]},
                     "slot_minutes": 30, "capacity": 1,
                     "services": ["calibration", "removal"] if i % 40 == 7 else ["calibration", "inspection"],
                     "active": i % 97 != 5, "changed": 0, "created_at": dt.datetime.now(dt.UTC)})
    with world.session() as s:
        s.execute(insert(ServiceCenter), rows)
        s.commit()
    with world.session() as s:
        for z in EDGES + rnd.sample(zips, 25):
            origin = locator.place(z)
            for service in ("", "removal", "inspection"):
                assert _found(s, z, 10, service) == _brute(s, origin, 10, service), (z, service)
            assert _found(s, z, 1) == _brute(s, origin, 1, "")
            assert _found(s, z, 50) == _brute(s, origin, 50, "")
        # the vehicle swap is offered nowhere here: an empty answer, after the widest box
        assert _found(s, "96910", 10, "vehicle-swap") == _brute(s, locator.place("96910"), 10, "vehicle-swap")


def test_centers_added_closed_moved_and_deleted_count_at_the_next_search(world):
    """A new center at the ZIP code is first at once (page and service); closed it is gone, reopened it is
    back; moved away (its position changed in the database) it drops; deleted it is gone. No cache to miss."""
    from companion.app.service import centers, locator
    from companion.app.service.models import ServiceCenter

    zip_code = "59801"  # Missoula, MT
    origin = locator.place(zip_code)
    cid = make_center(world, "Missoula Center", zip_code)
    d = world.driver()
    with world.browser(d["email"]) as c:
        assert 'href="/portal/centers/%d"' % cid in c.get("/portal/centers", params={"zip": zip_code}).text
        with world.session() as s:
            assert _found(s, zip_code)[0] == (0.0, cid)
            centers.set_active(s, None, cid, False)
            s.commit()
        assert 'href="/portal/centers/%d"' % cid not in c.get("/portal/centers", params={"zip": zip_code}).text
        with world.session() as s:
            assert cid not in [i for _m, i in _found(s, zip_code, 50)]
            assert _found(s, zip_code) == _brute(s, origin, 10, "")
            centers.set_active(s, None, cid, True)
            s.commit()
            assert _found(s, zip_code)[0] == (0.0, cid)
            far = locator.place("33040")  # to Key West
            s.execute(update(ServiceCenter).where(ServiceCenter.id == cid).values(lat=far.lat, lon=far.lon))
            s.commit()
            assert cid not in [i for _m, i in _found(s, zip_code)]
            assert (0.0, cid) in _found(s, "33040")
            assert _found(s, "33040") == _brute(s, far, 10, "")
            s.execute(delete(ServiceCenter).where(ServiceCenter.id == cid))
            s.commit()
            assert cid not in [i for _m, i in _found(s, "33040", 50)]
            assert _found(s, zip_code) == _brute(s, origin, 10, "")
    with world.session() as s, pytest.raises(Exception) as exc:
        centers.set_active(s, None, cid, True)
    assert getattr(exc.value, "status", None) == 404
