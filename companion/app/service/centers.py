"""Service centers: what staff enter, the locator (nearest by ZIP, with distances) and each day's slots in
the center's own time zone (zoneinfo: a slot is a local wall time; its UTC instant follows DST)."""

import datetime as dt
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, String, bindparam, cast, or_, select
from sqlalchemy.orm import Session

from companion.app.accounts.models import User
from companion.app.accounts.services import audit
from companion.app.core.problems import Problem
from companion.app.service import locator
from companion.app.service.models import SERVICES, WEEKDAYS, CenterSlot, ServiceCenter

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_DAYS_AHEAD = 120  # how far ahead slots can be booked


def zone(center: ServiceCenter) -> ZoneInfo:
    """The center's time zone."""
    return ZoneInfo(center.tz)


def local(center: ServiceCenter, ts: int) -> dt.datetime:
    """A UTC instant (seconds) as the center's local time."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).astimezone(zone(center))


def _clean_hours(hours: Any) -> dict[str, list[str]]:
    if not isinstance(hours, dict) or any(k not in WEEKDAYS for k in hours):
        raise Problem(422, "invalid-hours", "hours map mon..sun to [open, close] as HH:MM", field="hours")
    out = {}
    for day, span in hours.items():
        if not (isinstance(span, list | tuple) and len(span) == 2 and all(isinstance(x, str) and HHMM.match(x)
                                                                          for x in span)) or span[0] >= span[1]:
            raise Problem(422, "invalid-hours", "hours of %s must be [open, close], open before close" % day,
                          field="hours")
        out[day] = [span[0], span[1]]
    return out


def create_center(session: Session, actor: User | None, name: str, address: str, zip_code: str,
                  hours: dict[str, Any], services: list[str], capacity: int = 1, slot_minutes: int = 30,
                  phone: str = "", tz: str = "") -> ServiceCenter:
    """A new center (staff); its position and, unless given, its zone come from its ZIP code."""
    name, address, phone = (name or "").strip(), (address or "").strip(), (phone or "").strip()
    if not name or len(name) > 200:
        raise Problem(422, "invalid", "a center needs a name of at most 200 characters", field="name")
    if not address or len(address) > 400:
        raise Problem(422, "invalid", "a center needs an address of at most 400 characters", field="address")
    if len(phone) > 32:
        raise Problem(422, "too-long", "the phone is longer than 32 characters", field="phone")
    where = locator.place(zip_code)
    tz = tz or where.tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Problem(422, "invalid", "unknown time zone", field="tz") from exc
    if not services or any(s not in SERVICES for s in services):
        raise Problem(422, "invalid", "services are some of " + ", ".join(SERVICES), field="services")
    if not isinstance(capacity, int) or not 1 <= capacity <= 100:
        raise Problem(422, "invalid", "capacity is 1 to 100 per slot", field="capacity")
    if slot_minutes not in (15, 20, 30, 45, 60, 90, 120):
        raise Problem(422, "invalid", "a slot is 15, 20, 30, 45, 60, 90 or 120 minutes", field="slot_minutes")
    c = ServiceCenter(name=name, address=address, zip=where.zip, lat=where.lat, lon=where.lon, tz=tz, phone=phone,
                      hours=_clean_hours(hours), slot_minutes=slot_minutes, capacity=capacity,
                      services=list(dict.fromkeys(services)), active=True, changed=time.time_ns() // 1000)
    session.add(c)
    session.flush()
    audit(session, actor, None, "center-created", center=c.id, name=name)
    return c


def set_active(session: Session, actor: User | None, center_id: int, active: bool) -> ServiceCenter:
    """Close a center (the locator and booking no longer offer it; booked visits stay) or open it again
    (staff)."""
    c = session.get(ServiceCenter, center_id) if 0 < center_id < 2**31 else None
    if c is None:
        raise Problem(404, "not-found", "no such service center")
    c.active, c.changed = bool(active), time.time_ns() // 1000
    session.flush()
    audit(session, actor, None, "center-opened" if active else "center-closed", center=c.id)
    return c


def get(session: Session, center_id: int) -> ServiceCenter:
    """An active center (404 otherwise)."""
    c = session.get(ServiceCenter, center_id) if 0 < center_id < 2**31 else None
    if c is None or not c.active:
        raise Problem(404, "not-found", "no such service center")
    return c


@dataclass
class Found:
    """A center the locator found, with its distance."""

    center: ServiceCenter
    miles: float


def find(session: Session, zip_code: str, k: int = 10, service: str = "") -> tuple[locator.Place, list[Found]]:
    """The k active centers nearest to a ZIP code (offering service, when given), nearest first (ties by id).
    Read from the database on every search (centers added, moved or closed count at once, in every process):
    the centers in a bounding box around the ZIP code (the index on active, lat, lon), ranked by great-circle
    distance; when fewer than k of them are within the box's radius, a wider box. Anything outside a box is
    farther than its radius, so the k found are the k nearest."""
    origin = locator.place(zip_code)
    if service and service not in SERVICES:
        raise Problem(422, "invalid", "unknown service", field="service")
    radius = START_MILES
    while True:
        ranked = _within_box(session, origin, radius, service)
        near = [x for x in ranked if x[0] <= radius]
        if len(near) >= k or radius >= locator.WORLD:
            best = near[:k]
            break
        radius = locator.next_radius(radius, len(near), k)
    rows = {c.id: c for c in session.scalars(select(ServiceCenter).where(
        ServiceCenter.id.in_([cid for _d, cid in best])))} if best else {}
    return origin, [Found(rows[cid], round(d, 1)) for d, cid in best if cid in rows]


START_MILES = 50.0  # the first box; about ten of 5,000 centers spread like the population are within it


def _within_box(session: Session, origin: locator.Place, radius: float, service: str) -> list[tuple[float, int]]:
    """(miles, id) of the active centers in the box around origin that holds the circle of radius miles,
    nearest first."""
    lat_lo, lat_hi, lons = locator.bounds(origin.lat, origin.lon, radius)
    bounded = lat_lo > -90.0 or lat_hi < 90.0
    params: dict[str, Any] = {"lat_lo": lat_lo, "lat_hi": lat_hi}
    if service:
        params["pattern"] = '%"' + service + '"%'
    for i, (w, e) in enumerate(lons or ()):
        params["w%d" % i], params["e%d" % i] = w, e
    rows = session.connection().execute(_box_query(bounded, len(lons or ()), bool(service)), params)
    lat0, lon0 = origin.lat, origin.lon
    if not service:
        return sorted((locator.miles(lat0, lon0, la, ln), cid) for cid, la, ln in rows)
    # services is a JSON list of fixed names: narrowed in SQL by its text, checked again on each row here
    return sorted((locator.miles(lat0, lon0, la, ln), cid) for cid, la, ln, offered in rows
                  if service in (offered or ()))


@lru_cache(maxsize=16)
def _box_query(bounded: bool, ranges: int, service: bool) -> Select[Any]:
    """The box's query (built once per shape: a latitude band or not, 0 to 2 longitude ranges, a service)."""
    t = ServiceCenter.__table__.c
    q = select(t.id, t.lat, t.lon, *([t.services] if service else [])).where(t.active.is_(True))
    if bounded:
        q = q.where(t.lat.between(bindparam("lat_lo"), bindparam("lat_hi")))
    if ranges:
        q = q.where(or_(*[t.lon.between(bindparam("w%d" % i), bindparam("e%d" % i)) for i in range(ranges)]))
    if service:
        q = q.where(cast(t.services, String).like(bindparam("pattern")))
    return q


# ---- slots -------------------------------------------------------------------------------------------------
@dataclass
class Slot:
    """One bookable slot: its UTC instant and its local wall time."""

    ts: int
    local: dt.datetime
    free: int


def day_slots(center: ServiceCenter, day: dt.date) -> list[tuple[int, dt.datetime]]:
    """Every slot of a local date as (UTC seconds, local time): a wall time that does not exist that day
    (spring forward) has no slot, and one that happens twice (fall back) has one, the first."""
    span = (center.hours or {}).get(WEEKDAYS[day.weekday()])
    if not span:
        return []
    tz = zone(center)
    oh, om = map(int, span[0].split(":"))
    ch, cm = map(int, span[1].split(":"))
    start, end = oh * 60 + om, ch * 60 + cm
    out = []
    for minute in range(start, end - center.slot_minutes + 1, center.slot_minutes):
        wall = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
        back = wall.astimezone(dt.UTC).astimezone(tz)
        if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
            continue  # skipped by a DST change
        out.append((int(wall.astimezone(dt.UTC).timestamp()), back))
    return out


def free_slots(session: Session, center: ServiceCenter, day: dt.date, now: dt.datetime) -> list[Slot]:
    """The slots of a local date that are in the future and not full."""
    slots = day_slots(center, day)
    if not slots:
        return []
    taken = dict(session.execute(select(CenterSlot.starts_ts, CenterSlot.booked).where(
        CenterSlot.center_id == center.id, CenterSlot.starts_ts >= slots[0][0],
        CenterSlot.starts_ts <= slots[-1][0])).all())
    t = now.timestamp()
    return [Slot(ts, loc, center.capacity - taken.get(ts, 0)) for ts, loc in slots
            if ts > t and taken.get(ts, 0) < center.capacity]


def check_slot(center: ServiceCenter, ts: int, now: dt.datetime) -> dt.datetime:
    """The local time of a slot start, or 422: in the past, too far ahead, or not a slot of the center's
    hours."""
    if not isinstance(ts, int) or ts <= now.timestamp():
        raise Problem(422, "past-time", "the time is in the past", field="start")
    if ts > now.timestamp() + MAX_DAYS_AHEAD * 86400:
        raise Problem(422, "too-far", "slots can be booked up to %d days ahead" % MAX_DAYS_AHEAD, field="start")
    when = local(center, ts)
    if ts not in {s for s, _l in day_slots(center, when.date())}:
        raise Problem(422, "outside-hours", "the center has no slot at that time", field="start")
    return when


def parse_start(center: ServiceCenter, date_text: str, time_text: str) -> int:
    """A local date and HH:MM at the center as UTC seconds (the first, when the wall time happens twice)."""
    try:
        day = dt.date.fromisoformat((date_text or "").strip())
    except ValueError as exc:
        raise Problem(422, "invalid", "the date is YYYY-MM-DD", field="date") from exc
    m = HHMM.match((time_text or "").strip())
    if not m:
        raise Problem(422, "invalid", "the time is HH:MM", field="time")
    for ts, loc in day_slots(center, day):
        if (loc.hour, loc.minute) == (int(m.group(1)), int(m.group(2))):
            return ts
    raise Problem(422, "outside-hours", "the center has no slot at that time", field="time")
