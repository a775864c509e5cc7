"""A state's violation classes, counted from the uploaded, hash-chained log (so far Michigan's, Mich. Admin. Code
R 257.301a): one pure function over the records, the program's start date and the preset the handset runs.

What it counts, with the numbers and citations of the preset's [classes] table (presets/data/MI.toml):
- start-up failure: the handset's STARTUP_FAIL record (a failed start test no pass followed within the
  preset's startup_fail_s, 15 min in MI: the handset applies that window). Failures closer together than
  startup_apart_s (1 h) count once, measured from the failure last counted: 59 min apart one, 60 min two.
- minor violation: every minor_startups (3) counted start-up failures whose fail came minor_after_months (2)
  calendar months or more into the program (starting 2026-03-01: from 2026-05-01, day 61); or a service date
  with no service visit (the log's SERVICE record) within service_report_days (7) after it: day 7 is in time,
  day 8 is not. The service dates are the ones the handset ran: the program start plus the preset's
  service_days, then each visit's next date, or the date the companion moved it to.
- major violation: a rolling-retest violation (a VIOLATION record for a missed, failed or refused retest),
  tampering or circumvention (a VIOLATION for a start without a pass, tampering, the handset disconnected),
  and every major_minors (3) minor violations.
Not in the log, so not counted here: removal without an order, driving without the device. Days are UTC days of
device time (the handset's clock), as the handset counts its own service dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

import presets
from companion.app.core import timebase
from companion.app.models import Handset, LogRecord
from companion.app.notifications.messages import N_
from companion.app.service.models import Program
from interlock.timebase import DAY
from presets import ClassRule, Preset

# fsm.records (tests check these against the firmware)
VIOLATION, SERVICE, INSPECTION, STARTUP_FAIL = 11, 15, 21, 28
SVC_RECORD = 1
VIO_MISSED_RETEST, VIO_FAILED_RETEST, VIO_BYPASS, VIO_DISCONNECT, VIO_TAMPER, VIO_REFUSED_RETEST = 1, 2, 3, 4, 6, 7
RETEST_CAUSES = (VIO_MISSED_RETEST, VIO_FAILED_RETEST, VIO_REFUSED_RETEST)
TAMPER_CAUSES = (VIO_BYPASS, VIO_DISCONNECT, VIO_TAMPER)
TYPES = (VIOLATION, SERVICE, INSPECTION, STARTUP_FAIL)  # the record types the classes are counted from

EPOCH_DATE = timebase.EPOCH_DATE  # device time 0

# class names
STARTUP = "startup-failure"  # a counted start-up failure
STARTUP_ONCE = "startup-failure-same-time"  # within startup_apart_s of the one counted: counted with it
MINOR = "minor"
MAJOR = "major"
LABELS = {STARTUP: N_("Start-up failure"), STARTUP_ONCE: N_("Start-up failure, counted once with an earlier one"),
          MINOR: N_("Minor violation"), MAJOR: N_("Major violation")}


@dataclass(frozen=True)
class Classified:
    """One classified event: the log record it comes from (seq None for a service date nothing was reported
    for), its device time, its class, why (plain words) and the rule that makes it so."""

    seq: int | None
    wall: int
    cls: str
    why: str
    rule: ClassRule


@dataclass(frozen=True)
class Classes:
    """All classified events of a log, oldest first, and the counts."""

    events: tuple[Classified, ...]

    def count(self, cls: str) -> int:
        return sum(1 for e in self.events if e.cls == cls)

    @property
    def minor(self) -> int:
        return self.count(MINOR)

    @property
    def major(self) -> int:
        return self.count(MAJOR)

    @property
    def startup_failures(self) -> int:
        return self.count(STARTUP)

    def by_seq(self) -> dict[int, list[Classified]]:
        """The classes each log record has (a record can be a counted start-up failure and make a minor)."""
        out: dict[int, list[Classified]] = {}
        for e in self.events:
            if e.seq is not None:
                out.setdefault(e.seq, []).append(e)
        return out


NONE = Classes(())


def add_months(d: dt.date, months: int) -> dt.date:
    """The same day of the month, months later (the month's last day when it has fewer days)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(d.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _day(d: dt.date) -> int:
    return (d - EPOCH_DATE).days


def _when(wall: int) -> str:
    return (timebase.EPOCH + dt.timedelta(seconds=wall)).strftime("%Y-%m-%d %H:%M")


def classify(records: Iterable[tuple[int, int, int, int, int, int]], preset: Preset | None,
             starts_on: dt.date | None, today: dt.date) -> Classes:
    """The violation classes of one device's log: records are (seq, wall, type, a, b, c) in any order (types
    other than TYPES are ignored); preset is the one the handset runs (no classes: nothing is classified);
    starts_on the program's first day (None: no start-up failure counts toward a minor violation and no service
    date is known before the first visit); today ends the last service date's reporting time."""
    if preset is None or not preset.classes:
        return NONE
    k = preset.classes
    apart = k["startup_apart_s"].value
    after = _day(add_months(starts_on, k["minor_after_months"].value)) * DAY if starts_on else None
    report = k["service_report_days"].value
    service_days = preset.params["service_days"].value
    rows = sorted((r for r in records if r[2] in TYPES), key=lambda r: r[0])
    events: list[Classified] = []
    minors: list[Classified] = []  # in time order, for the majors they make
    last_counted: int | None = None  # the fail time of the start-up failure last counted
    startups = 0  # counted start-up failures toward the next minor violation
    due = _day(starts_on) + service_days if starts_on else None  # the service date in force (device day)
    flagged = False  # the service date in force was missed already

    def missed_service(until_day: int) -> None:
        nonlocal flagged
        if due is not None and not flagged and until_day > due + report:
            flagged = True
            m = Classified(None, (due + report + 1) * DAY, MINOR,
                           "no service reported within %d days of the date %s" % (report, _when(due * DAY)[:10]),
                           k["service_report_days"])
            minors.append(m)

    for seq, wall, rtype, a, b, c in rows:
        missed_service(wall // DAY)
        if rtype == STARTUP_FAIL:
            failed = a  # the device time of the failed start test
            if last_counted is not None and failed - last_counted < apart:
                events.append(Classified(seq, wall, STARTUP_ONCE, "within %d min of the start-up failure at %s: "
                                         "counted once" % (apart // 60, _when(last_counted)),
                                         k["startup_apart_s"]))
                continue
            last_counted = failed
            events.append(Classified(seq, wall, STARTUP, "a failed start test no pass followed in time",
                                     k["startup_apart_s"]))
            if after is not None and failed >= after:
                startups += 1
                if startups >= k["minor_startups"].value:
                    startups = 0
                    minors.append(Classified(seq, wall, MINOR, "%d start-up failures after %d months of the "
                                             "program" % (k["minor_startups"].value, k["minor_after_months"].value),
                                             k["minor_startups"]))
        elif rtype == VIOLATION:
            if a in RETEST_CAUSES and k["major_retest"].value:
                events.append(Classified(seq, wall, MAJOR, "a rolling-retest violation", k["major_retest"]))
            elif a in TAMPER_CAUSES and k["major_tamper"].value:
                events.append(Classified(seq, wall, MAJOR, "tampering or circumvention", k["major_tamper"]))
        elif rtype == SERVICE and a == SVC_RECORD:
            due = c if c > 0 else wall // DAY + service_days
            flagged = False
        elif rtype == INSPECTION and a == 3 and c == 1:
            due = b  # the companion moved the service date
            flagged = False
    missed_service(_day(today))
    events.extend(minors)
    need = k["major_minors"].value
    for i, m in enumerate(sorted(minors, key=lambda e: e.wall), 1):
        if i % need == 0:
            events.append(Classified(m.seq, m.wall, MAJOR, "%d minor violations" % need, k["major_minors"]))
    events.sort(key=lambda e: (e.wall, e.seq if e.seq is not None else -1))
    return Classes(tuple(events))


# ---- from the database: the preset the handset runs, the program's start, the device's records -------------
def device_preset(tag: str) -> Preset | None:
    """The preset a handset runs, from its tag ("MI@1"; "" none): the state's preset file as it is now (the
    companion pushes every new version to the handsets of the state, `python -m companion presets`)."""
    state = (tag or "").split("@")[0]
    if not state:
        return None
    try:
        return presets.load_cached(state)
    except presets.PresetError:
        return None


def of_device(session: Session, handset_id: int, account_id: int, today: dt.date | None = None) -> Classes:
    """The violation classes of one device's uploaded log, under the preset its handset runs."""
    h = session.get(Handset, handset_id)
    preset = device_preset(h.preset) if h is not None else None
    if preset is None or not preset.classes:
        return NONE
    p = session.get(Program, account_id)
    starts_on = p.starts_on if p is not None else None
    if starts_on is None:
        # the oldest record's time, through the primary key (handset, seq): min(wall) walked the whole log
        first = session.scalar(select(LogRecord.wall).where(LogRecord.handset_id == handset_id)
                               .order_by(LogRecord.seq).limit(1))
        starts_on = EPOCH_DATE + dt.timedelta(days=first // DAY) if first is not None else None
    rows = session.execute(select(LogRecord.seq, LogRecord.wall, LogRecord.rtype, LogRecord.a, LogRecord.b,
                                  LogRecord.c).where(LogRecord.handset_id == handset_id,
                                                     LogRecord.rtype.in_(TYPES))).all()
    return classify([(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows], preset, starts_on,
                    today or timebase.today())
