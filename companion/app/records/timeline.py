"""The driver's own record: tests, retests, results, violations, lockouts and clears from the uploaded log
(hash-chained, verified on upload), as a filtered timeline; each violation with the rule of the driver's state;
disputes; and the export the project's log reader verifies."""

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from companion.app.accounts.models import DeviceLink, User
from companion.app.accounts.services import audit
from companion.app.core import timebase
from companion.app.core.problems import Problem
from companion.app.models import Handset, LogRecord
from companion.app.notifications.messages import N_
from companion.app.records import classes as vclasses
from companion.app.records import rules
from companion.app.service.models import AuthorityAssignment, Dispute, Program
from interlock import record

# fsm.records types (tests check these against the firmware)
TEST_REQUEST, RESULT, LOCKOUT, CLEAR, VIOLATION, RETEST, BYPASS, STARTUP_FAIL = 6, 8, 9, 10, 11, 12, 23, 28
KINDS = {  # filter name -> record types (a retest's request and sample are tests too; "retests" are the
    # retest schedule's own records: asked, passed, missed, refused)
    "tests": (TEST_REQUEST, RESULT, STARTUP_FAIL),
    "retests": (RETEST,),
    "violations": (VIOLATION, BYPASS),
    "lockouts": (LOCKOUT,),
    "clears": (CLEAR,),
}
ALL_TYPES = tuple(t for ts in KINDS.values() for t in ts)
PAGE = 100

VERDICTS = {1: N_("pass"), 2: N_("warn"), 3: N_("fail")}
LOCKS = {1: N_("temporary lock after a failed test"), 2: N_("lock after too many aborted blows"),
         3: N_("violation lockout"), 4: N_("inspection due"), 5: N_("payment due"), 6: N_("log storage full"),
         7: N_("wait after wrong unlock codes"), 8: N_("handset state lost")}
SOURCES = {1: N_("unlock code"), 2: N_("remote clear"), 3: N_("technician"), 4: N_("timer")}
RETEST_OUTCOMES = {1: N_("passed"), 2: N_("passed with a warning"), 3: N_("failed"), 4: N_("missed"),
                   5: N_("refused")}


@dataclass
class Event:
    """One line of the timeline (words are gettext ids with params, rendered in the reader's language)."""

    handset_id: int
    seq: int
    at: dt.datetime
    kind: str  # tests | retests | violations | lockouts | clears
    title: str
    params: dict[str, str]
    rule: rules.Rule | None = None
    dispute: Dispute | None = None
    disputable: bool = False
    classes: list[vclasses.Classified] = field(default_factory=list)  # the state's violation classes of it

    @property
    def stamp(self) -> str:
        """When, in UTC, as pages show it (YYYY-MM-DD HH:MM UTC)."""
        a = self.at
        return "%04d-%02d-%02d %02d:%02d UTC" % (a.year, a.month, a.day, a.hour, a.minute)


KIND_OF = {t: k for k, ts in KINDS.items() for t in ts}


def describe(rtype: int, a: int, b: int, c: int) -> tuple[str, str, dict[str, str]]:
    """(kind, title message id, params) for one record; the kind follows the record type alone."""
    kind = KIND_OF.get(rtype, "clears")
    if rtype == TEST_REQUEST:
        return kind, N_("Breath test asked (%(what)s)"), {"what": N_("start test") if a == 1 else N_("retest")}
    if rtype == RESULT:
        return kind, N_("Result %(brac)s g/dL: %(verdict)s (%(what)s)"), {
            "brac": "%d.%03d" % (a // 1000, a % 1000), "verdict": VERDICTS.get(b, "?"),
            "what": N_("start test") if c == 1 else N_("retest")}
    if rtype == RETEST:
        if a == 0:
            return kind, N_("Retest asked"), {}
        return kind, N_("Retest %(outcome)s"), {"outcome": RETEST_OUTCOMES.get(a, "?")}
    if rtype == VIOLATION:
        return kind, N_("Violation: %(cause)s"), {"cause": rules.CAUSES.get(a, "?")}
    if rtype == BYPASS:
        return kind, N_("Engine started without a passed test"), {}
    if rtype == STARTUP_FAIL:
        return kind, N_("Start-up failure: no pass within %(min)s minutes of a failed start test"), {
            "min": str(b // 60)}
    if rtype == LOCKOUT:
        return kind, N_("Lockout: %(what)s"), {"what": LOCKS.get(a, "?")}
    return kind, N_("Cleared: %(what)s, by %(source)s"), {"what": LOCKS.get(a, "?"), "source": SOURCES.get(b, "?")}


def words(e: Event, gettext: "Callable[[str], str]") -> str:
    """An event's line in the reader's language."""
    title = gettext(e.title)
    return title % {k: gettext(v) for k, v in e.params.items()} if e.params else title


# ---- who may read which record -----------------------------------------------------------------------------
def may_read(session: Session, user: User, account_id: int) -> bool:
    """The driver of the account, an authority it is assigned to, or staff."""
    if user.role == "staff":
        return True
    if user.role == "driver":
        return user.account_id == account_id
    if user.role == "authority":
        return session.scalar(select(AuthorityAssignment.id).where(
            AuthorityAssignment.user_id == user.id, AuthorityAssignment.account_id == account_id)) is not None
    return False


def readable_device(session: Session, user: User, link_id: int) -> DeviceLink:
    """A device whose record the user may read (404 otherwise, the same answer as no such device)."""
    link = session.get(DeviceLink, link_id) if 0 < link_id < 2**31 else None
    if link is None or link.handset_id is None or not may_read(session, user, link.account_id):
        raise Problem(404, "not-found", "no such device")
    return link


def jurisdiction(session: Session, account_id: int, handset_id: int | None = None) -> str:
    """The state whose rules a device's record cites: the state of the preset its handset runs (the policy
    the events happened under), else the program's state ("" when neither is set)."""
    if handset_id is not None:
        h = session.get(Handset, handset_id)
        if h is not None and h.preset:
            return h.preset.split("@")[0]
    p = session.get(Program, account_id)
    return p.jurisdiction if p else ""


# ---- the timeline ------------------------------------------------------------------------------------------
@dataclass
class Timeline:
    """One page of a device's record, newest first, with the counts of each kind in the filter's period."""

    link: DeviceLink
    state: str
    events: list[Event]
    counts: dict[str, int]  # per kind in the period, whichever kinds are shown
    kinds: tuple[str, ...]
    since: dt.date | None
    until: dt.date | None
    before: int | None  # the seq to continue from (older), or None at the end
    disputes_open: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    classes: vclasses.Classes = vclasses.NONE  # the state's violation classes over the whole log


def _wall(d: dt.date) -> int:
    return int((dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC) - timebase.EPOCH).total_seconds())


def parse_filters(kinds: list[str], since: str, until: str) -> tuple[tuple[str, ...], dt.date | None,
                                                                        dt.date | None]:
    """Validated filters: kinds (all when none), and an inclusive date range (422 when malformed)."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise Problem(422, "invalid", "kinds are " + ", ".join(KINDS), field="kind")
    try:
        s = dt.date.fromisoformat(since) if since else None
        u = dt.date.fromisoformat(until) if until else None
    except ValueError as exc:
        raise Problem(422, "invalid", "dates are YYYY-MM-DD", field="since") from exc
    if s and u and s > u:
        raise Problem(422, "invalid", "the period ends before it starts", field="until")
    return tuple(k for k in KINDS if k in kinds) or tuple(KINDS), s, u


# the counts per type of a device's records in a period, per database: (handset, since, until) -> (the first
# seq stored, the last seq counted, counts). A stored record never changes and new ones come after the last
# (the sync stores the chain in order, verified), so a page counts only what arrived since it last counted.
_COUNTS: "OrderedDict[tuple[str, int, int | None, int | None], tuple[int, int, dict[int, int]]]" = OrderedDict()
_COUNTS_LOCK = threading.Lock()
COUNTS_KEPT = 1024


def period_counts(session: Session, hid: int, since: dt.date | None, until: dt.date | None) -> dict[int, int]:
    """How many records of each timeline type the device logged in the period (all of its log without one).
    The first count of a period walks its records on the index (handset, type, wall); later ones add only the
    records stored since (seq above the last counted, on the primary key) -- or count again when the stored
    log no longer starts or ends where it did."""
    lo = _wall(since) if since else None
    hi = _wall(until + dt.timedelta(days=1)) if until else None
    first, last = session.execute(select(
        select(func.min(LogRecord.seq)).where(LogRecord.handset_id == hid).scalar_subquery(),
        select(func.max(LogRecord.seq)).where(LogRecord.handset_id == hid).scalar_subquery())).one()
    if first is None:
        return {}
    key = (str(session.get_bind().engine.url), hid, lo, hi)
    with _COUNTS_LOCK:
        cached = _COUNTS.get(key)
    conds = [LogRecord.handset_id == hid, LogRecord.rtype.in_(ALL_TYPES)]
    if lo is not None:
        conds.append(LogRecord.wall >= lo)
    if hi is not None:
        conds.append(LogRecord.wall < hi)
    if cached is not None and cached[0] == first and cached[1] <= last:
        counts = dict(cached[2])
        if cached[1] < last:
            # "rtype + 0": walk the new seqs on the primary key, not the type index
            for rtype, n in session.execute(select(LogRecord.rtype, func.count()).where(
                    LogRecord.handset_id == hid, LogRecord.seq > cached[1], LogRecord.seq <= last,
                    (LogRecord.rtype + 0).in_(ALL_TYPES), *conds[2:]).group_by(LogRecord.rtype)):
                counts[rtype] = counts.get(rtype, 0) + n
    else:
        # answered from the type index alone (a bound on seq would read each row): kept only when no record
        # arrived meanwhile, i.e. the last seq is the same after the count
        counts = dict(session.execute(select(LogRecord.rtype, func.count()).where(*conds)
                                      .group_by(LogRecord.rtype)).all())
        if session.scalar(select(func.max(LogRecord.seq)).where(LogRecord.handset_id == hid)) != last:
            return counts
    with _COUNTS_LOCK:
        _COUNTS[key] = (first, last, counts)
        _COUNTS.move_to_end(key)
        while len(_COUNTS) > COUNTS_KEPT:
            _COUNTS.popitem(last=False)
    return counts


def timeline(session: Session, user: User, link_id: int, kinds: tuple[str, ...] = tuple(KINDS),
             since: dt.date | None = None, until: dt.date | None = None, before: int | None = None,
             limit: int = PAGE) -> Timeline:
    """A page of the device's record (newest first) and the counts per kind in the filter's period (every
    kind, shown or not)."""
    link = readable_device(session, user, link_id)
    hid = link.handset_id
    types = tuple(t for k in kinds for t in KINDS[k])
    conds = [LogRecord.handset_id == hid, LogRecord.rtype.in_(types)]
    if since:
        conds.append(LogRecord.wall >= _wall(since))
    if until:
        conds.append(LogRecord.wall < _wall(until + dt.timedelta(days=1)))
    counts = {k: 0 for k in KINDS}
    for rtype, n in period_counts(session, hid or 0, since, until).items():
        counts[KIND_OF[rtype]] += n
    q = select(LogRecord.seq, LogRecord.wall, LogRecord.rtype, LogRecord.a, LogRecord.b, LogRecord.c).where(*conds)
    if before is not None:
        q = q.where(LogRecord.seq < before)
    # dense types (tests: most of a log) page backwards through the primary key; sparse ones (violations,
    # lockouts, clears, retests) through the type index, sorting the few rows found ("seq + 0" keeps SQLite's
    # planner from walking the whole primary key for them)
    order = LogRecord.seq if "tests" in kinds else LogRecord.seq + 0
    rows = session.execute(q.order_by(order.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    state = jurisdiction(session, link.account_id, hid)
    classified = vclasses.of_device(session, hid, link.account_id) if hid else vclasses.NONE
    by_seq = classified.by_seq()
    # the page's disputes and the device's open ones, in one query (a device has few disputes)
    shown = [r[0] for r in rows]
    found = list(session.scalars(select(Dispute).where(
        Dispute.handset_id == hid, or_(Dispute.status == "open", Dispute.seq.in_(shown)) if shown
        else Dispute.status == "open")))
    on_page = set(shown)
    disputes = {d.seq: d for d in found if d.seq in on_page}
    events = []
    for seq, wall, rtype, a, b, c in rows:
        kind, title, params = describe(rtype, a, b, c)
        if kind not in kinds:
            continue
        rule = rules.rule_for(a, state) if rtype == VIOLATION else None  # the VIOLATION record names the cause
        events.append(Event(hid or 0, seq, timebase.EPOCH + dt.timedelta(seconds=wall), kind, title, params,
                            rule, disputes.get(seq), rtype in (VIOLATION, LOCKOUT), by_seq.get(seq, [])))
    open_count = sum(1 for d in found if d.status == "open")
    return Timeline(link, state, events, counts, kinds, since, until, rows[-1][0] if more and rows else None,
                    open_count, classes=classified)


# ---- disputes ----------------------------------------------------------------------------------------------
def dispute(session: Session, user: User, link_id: int, seq: int, note: str) -> Dispute:
    """The driver disputes a violation or lockout of their record with a note (once per event)."""
    if user.role != "driver":
        raise Problem(404, "not-found", "no such device")
    link = readable_device(session, user, link_id)
    note = (note or "").strip()
    if not note or len(note) > 1000 or any(ord(ch) < 32 and ch != "\n" for ch in note):
        raise Problem(422, "invalid", "a dispute needs a note of at most 1000 characters", field="note")
    rec = session.get(LogRecord, (link.handset_id, seq)) if 0 <= seq < 2**63 else None
    if rec is None or rec.rtype not in (VIOLATION, LOCKOUT):
        raise Problem(404, "not-found", "no such violation or lockout in this record", field="seq")
    if session.scalar(select(Dispute.id).where(Dispute.handset_id == rec.handset_id, Dispute.seq == seq)):
        raise Problem(409, "already-disputed", "this event is disputed already")
    d = Dispute(account_id=link.account_id, handset_id=rec.handset_id, seq=seq, note=note, status="open")
    session.add(d)
    session.flush()
    audit(session, user, user, "event-disputed", handset=rec.handset_id, seq=seq, dispute=d.id)
    return d


def open_disputes(session: Session) -> list[Dispute]:
    """Disputes waiting for staff, oldest first."""
    return list(session.scalars(select(Dispute).where(Dispute.status == "open").order_by(Dispute.id)))


def resolve(session: Session, actor: User, dispute_id: int, upheld: bool, resolution: str) -> Dispute:
    """Staff resolve a dispute: upheld (the driver is right) or rejected, with the reason."""
    d = session.get(Dispute, dispute_id) if 0 < dispute_id < 2**31 else None
    if d is None or actor.role != "staff":
        raise Problem(404, "not-found", "no such dispute")
    if d.status != "open":
        raise Problem(409, "closed", "this dispute is resolved already")
    resolution = (resolution or "").strip()
    if not resolution or len(resolution) > 1000:
        raise Problem(422, "invalid", "say why, in at most 1000 characters", field="resolution")
    d.status, d.resolution, d.resolved_by = ("upheld" if upheld else "rejected"), resolution, actor.id
    d.resolved_at = dt.datetime.now(dt.UTC)
    session.flush()
    audit(session, actor, None, "dispute-resolved", dispute=d.id, status=d.status)
    return d


# ---- export ------------------------------------------------------------------------------------------------
def export(session: Session, user: User, link_id: int) -> bytes:
    """The device's stored log as the service port exports it (record header, then the records as the
    handset wrote them): the simulator's log reader (`log --raw FILE`) verifies the chain."""
    link = readable_device(session, user, link_id)
    raws = session.scalars(select(LogRecord.raw).where(LogRecord.handset_id == link.handset_id)
                           .order_by(LogRecord.seq)).all()
    first = session.scalar(select(func.min(LogRecord.seq)).where(LogRecord.handset_id == link.handset_id))
    h = session.get(Handset, link.handset_id)
    if h is None or first is None:
        raise Problem(404, "not-found", "no record uploaded yet")
    return bytes(record.header(first, record.GENESIS)) + b"".join(raws)
