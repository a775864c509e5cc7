"""The record page on a long log: every record once, newest first, when paging with "Older events", with and
without filters (kinds, a period) and at the edges (an empty page, a cursor past the start, the last page);
the counts per kind are the log's, for every kind whether shown or not, and stay right as records arrive and
when the stored log no longer starts where it did. Both backends."""

import datetime as dt
import re

import pytest
from sqlalchemy import delete, insert, select

from companion import testing
from tests.service_support import driver_user, set_program

pytest_plugins = ["tests.portal_support"]
N = 2400


@pytest.fixture(scope="module")
def portal_server(portal_backend, mail, tmp_path_factory):
    """The portal with documents under a temporary directory."""
    from tests.portal_support import fast_portal_settings

    port = testing.free_port()
    ps = fast_portal_settings(mail.port, "http://127.0.0.1:%d" % port,
                              DOCUMENTS_DIR=str(tmp_path_factory.mktemp("docs")))
    with testing.ServerThread(portal_backend, port=port, portal_settings=ps) as srv:
        yield srv


@pytest.fixture(scope="module")
def logged(world):
    """A driver whose handset stored N chained records over 100 days (drives, retests, now and then a
    violation, a lockout and a clear), inserted as the sync stores them."""
    import host_sim  # noqa: F401
    from bench.service import _year_of_log
    from companion.app.core import timebase
    from companion.app.models import LogRecord

    d = world.driver()
    set_program(world, d["account_id"], "IN")
    hid = d["handsets"][0]["device_id"]
    log = _year_of_log(hid, N, timebase.device_now() - 100 * 86400)
    with world.session() as s:
        s.execute(insert(LogRecord), log)
        s.commit()
    d["hid"], d["log"], d["user"] = hid, log, driver_user(world, d["user_id"])
    return d


def _walk(world, d, kinds, since=None, until=None, limit=100):
    """Every page from the newest on, following the cursor: the seqs seen, and the number of pages."""
    from companion.app.records import timeline

    seen, before, pages = [], None, 0
    while True:
        with world.session() as s:
            t = timeline.timeline(s, d["user"], d["devices"][0], kinds, since, until, before, limit)
        pages += 1
        seen.extend(e.seq for e in t.events)
        assert len(t.events) <= limit
        if t.before is None:
            return seen, pages, t
        assert len(t.events) == limit and t.before == t.events[-1].seq
        before = t.before


def _expected(d, kinds, since=None, until=None):
    from companion.app.records import timeline

    types = {r for k in kinds for r in timeline.KINDS[k]}
    lo = timeline._wall(since) if since else -1
    hi = timeline._wall(until + dt.timedelta(days=1)) if until else 2**62
    return [r["seq"] for r in reversed(d["log"]) if r["rtype"] in types and lo <= r["wall"] < hi]


def _brute_counts(d, since=None, until=None):
    from companion.app.records import timeline

    lo = timeline._wall(since) if since else -1
    hi = timeline._wall(until + dt.timedelta(days=1)) if until else 2**62
    out = {k: 0 for k in timeline.KINDS}
    for r in d["log"]:
        if r["rtype"] in timeline.KIND_OF and lo <= r["wall"] < hi:
            out[timeline.KIND_OF[r["rtype"]]] += 1
    return out


def test_paging_visits_every_record_once_newest_first(world, logged):
    """All kinds, one sparse kind, two kinds, a period, a period with one kind: the pages together are the
    filter's records in order, each once; a filter with exactly a page of records ends on that page."""
    from companion.app.records import timeline

    today = dt.date.today()
    cases = [(tuple(timeline.KINDS), None, None), (("violations",), None, None), (("lockouts", "clears"), None, None),
             (tuple(timeline.KINDS), today - dt.timedelta(days=40), today - dt.timedelta(days=30)),
             (("retests",), today - dt.timedelta(days=70), today - dt.timedelta(days=10)),
             (tuple(timeline.KINDS), today + dt.timedelta(days=1), None)]
    for kinds, since, until in cases:
        seen, pages, _t = _walk(world, logged, kinds, since, until)
        want = _expected(logged, kinds, since, until)
        assert seen == want, (kinds, since, until)
        assert pages == max(1, -(-len(want) // 100))
    # exactly a page: no "older" cursor; one more record: a second page of one
    viol = _expected(logged, ("violations",))
    seen, pages, t = _walk(world, logged, ("violations",), limit=len(viol))
    assert seen == viol and pages == 1 and t.before is None
    seen, pages, _t = _walk(world, logged, ("violations",), limit=len(viol) - 1)
    assert seen == viol and pages == 2


def test_a_cursor_past_the_start_or_at_zero_is_an_empty_page(world, logged):
    """Before the oldest record (or 0) there is nothing and no further cursor; just after it, that record."""
    from companion.app.records import timeline

    first = _expected(logged, tuple(timeline.KINDS))[-1]  # the oldest record the timeline shows
    with world.session() as s:
        for before in (first, 0):
            t = timeline.timeline(s, logged["user"], logged["devices"][0], tuple(timeline.KINDS), None, None, before)
            assert t.events == [] and t.before is None
        t = timeline.timeline(s, logged["user"], logged["devices"][0], tuple(timeline.KINDS), None, None, first + 1)
        assert [e.seq for e in t.events] == [first] and t.before is None


def test_the_page_follows_the_cursor_and_keeps_the_filters(world, logged):
    """Over HTTP: the "Older events" link carries the kinds and the period; followed, it shows the next
    records; a malformed cursor is no page, a malformed period a form error."""
    since = (dt.date.today() - dt.timedelta(days=60)).isoformat()
    with world.browser(logged["email"]) as c:
        url = "/portal/record/%d" % logged["devices"][0]
        page = c.get(url, params={"kind": ["tests", "retests"], "since": since}).text
        link = re.search(r'<a href="\?([^"]+)">Older events</a>', page)
        assert link is not None
        query = link.group(1).replace("&amp;", "&")
        assert "kind=tests&kind=retests&" in query and "since=" + since in query
        first = [int(x) for x in re.findall(r'id="e(\d+)"', page)]
        nxt = c.get(url + "?" + query).text
        second = [int(x) for x in re.findall(r'id="e(\d+)"', nxt)]
        assert len(first) == 100 and second and max(second) < min(first)
        assert first + second == _expected(logged, ("tests", "retests"), dt.date.fromisoformat(since))[:len(first)
                                                                                                       + len(second)]
        for before in ("-1", "x", str(2**63)):  # a malformed query is as good as an unknown page (the portal's rule)
            assert c.get(url, params={"before": before}).status_code == 404
        assert c.get(url, params={"since": "2026-13-01"}).status_code == 422
        assert c.get(url, params={"since": "2026-02-01", "until": "2026-01-01"}).status_code == 422


def test_counts_are_the_logs_for_every_kind_and_follow_new_and_removed_records(world, logged):
    """The counts per kind in the period, for shown and hidden kinds alike; new records (a later upload) are
    counted at the next page, in every period they fall in; when the stored log loses its first records the
    counts are taken again."""
    from companion.app.core import timebase
    from companion.app.models import LogRecord
    from companion.app.records import timeline
    from interlock import record

    month = (dt.date.today() - dt.timedelta(days=40), dt.date.today() - dt.timedelta(days=30))

    def counts(kinds, since=None, until=None):
        with world.session() as s:
            return timeline.timeline(s, logged["user"], logged["devices"][0], kinds, since, until).counts

    for since, until in [(None, None), month, (dt.date.today(), None)]:
        assert counts(("violations",), since, until) == _brute_counts(logged, since, until)
        assert counts(tuple(timeline.KINDS), since, until) == _brute_counts(logged, since, until)
    # a later upload: two violations and a lockout, today
    last = logged["log"][-1]
    prev = record.chain(record.GENESIS, last["raw"])  # the chain value is not checked here; the rows are
    now = timebase.device_now()
    more = []
    for i, (rtype, a) in enumerate([(timeline.VIOLATION, 3), (timeline.LOCKOUT, 3), (timeline.VIOLATION, 1)]):
        raw = record.encode(prev, last["seq"] + 1 + i, now, rtype, a, 0, 0, 0)
        more.append({"handset_id": logged["hid"], "seq": last["seq"] + 1 + i, "wall": now, "rtype": rtype, "a": a,
                     "b": 0, "c": 0, "photo": 0, "raw": bytes(raw)})
    with world.session() as s:
        s.execute(insert(LogRecord), more)
        s.commit()
    logged["log"].extend(more)
    for since, until in [(None, None), month, (dt.date.today(), None)]:
        assert counts(("clears",), since, until) == _brute_counts(logged, since, until)
    # the stored log loses its first 500 records (not something the sync does; the counts must not lie)
    cut = logged["log"][499]["seq"]
    with world.session() as s:
        s.execute(delete(LogRecord).where(LogRecord.handset_id == logged["hid"], LogRecord.seq <= cut))
        s.commit()
    del logged["log"][:500]
    for since, until in [(None, None), month]:
        assert counts(tuple(timeline.KINDS), since, until) == _brute_counts(logged, since, until)
    with world.session() as s:
        assert s.scalar(select(LogRecord.seq).where(LogRecord.handset_id == logged["hid"])
                        .order_by(LogRecord.seq).limit(1)) == cut + 1
