"""The driver's own record and the monitoring authority's view, over HTTP: a violation produced by the real
firmware (host_sim) and uploaded through sync shows with the rule of the driver's state; filters; disputes
resolved by staff; the export verifies with the project's log reader; the authority sees only its drivers and
downloads the compliance report (PDF, checked by its text). Both backends."""

import io

import pytest

from tests.companion_doubles import SyncedSim
from tests.portal_client import csrf_of
from tests.service_support import authority_for, bypass_violation, set_program

pytest_plugins = ["tests.portal_support"]


@pytest.fixture(scope="module")
def violator(world, portal_server):
    """A driver in Arizona whose handset (real firmware) logged a bypass violation, uploaded through sync."""
    d = world.driver()
    set_program(world, d["account_id"], "AZ")
    sim = SyncedSim(portal_server.url, d["handsets"][0])
    bypass_violation(sim)
    d["sim"] = sim
    return d


def test_firmware_constants_match_the_records_module():
    """The record types and violation causes the companion names are the firmware's."""
    import host_sim  # noqa: F401
    from companion.app.records import rules, timeline
    from fsm import records as R

    assert (timeline.TEST_REQUEST, timeline.RESULT, timeline.LOCKOUT, timeline.CLEAR, timeline.VIOLATION,
            timeline.RETEST, timeline.BYPASS) == (R.TEST_REQUEST, R.RESULT, R.LOCKOUT, R.CLEAR, R.VIOLATION,
                                                  R.RETEST, R.BYPASS)
    assert (rules.VIO_MISSED_RETEST, rules.VIO_FAILED_RETEST, rules.VIO_BYPASS, rules.VIO_DISCONNECT,
            rules.VIO_POWER_CUT, rules.VIO_TAMPER, rules.VIO_REFUSED_RETEST) == (
        R.VIO_MISSED_RETEST, R.VIO_FAILED_RETEST, R.VIO_BYPASS, R.VIO_DISCONNECT, R.VIO_POWER_CUT, R.VIO_TAMPER,
        R.VIO_REFUSED_RETEST)


def test_driver_sees_the_violation_with_the_states_rule_and_filters(world, violator):
    """The record lists the violation with Arizona's rule; the violations filter shows no lockout; a period
    before the event is empty."""
    with world.browser(violator["email"]) as c:
        page = c.get("/portal/record/%d" % violator["devices"][0]).text
        assert "Violation: engine started without a passed test" in page
        assert "A.R.S. 28-1301(2)" in page and "Rules of AZ apply." in page
        only = c.get("/portal/record/%d" % violator["devices"][0], params={"kind": "violations"}).text
        assert "Violation:" in only and "Lockout:" not in only and "Breath test asked" not in only
        old = c.get("/portal/record/%d" % violator["devices"][0], params={"until": "2024-06-01"}).text
        assert "Nothing in this period." in old
        bad = c.get("/portal/record/%d" % violator["devices"][0], params={"kind": "nonsense"})
        assert bad.status_code == 422


def test_a_state_without_a_rule_says_so_and_cites_nothing(world, portal_server):
    """In a state with no rule found for a bypass, the record says so instead of inventing a citation."""
    d = world.driver()
    set_program(world, d["account_id"], "WA")
    bypass_violation(SyncedSim(portal_server.url, d["handsets"][0]))
    with world.browser(d["email"]) as c:
        page = c.get("/portal/record/%d" % d["devices"][0]).text
    assert "No rule of WA was found for this" in page and "28-1301" not in page


def test_driver_disputes_an_event_and_staff_resolve_it(world, violator):
    """A dispute with a note shows as open; staff uphold it with a reason; once per event."""
    from companion.app.models import LogRecord
    from companion.app.records import timeline

    with world.session() as s:
        from sqlalchemy import select

        seq = s.scalar(select(LogRecord.seq).where(LogRecord.handset_id == violator["handsets"][0]["device_id"],
                                                   LogRecord.rtype == timeline.VIOLATION))
    link = violator["devices"][0]
    with world.browser(violator["email"]) as c:
        page = c.get("/portal/record/%d" % link).text
        r = c.post("/portal/record/%d/disputes" % link, data={"seq": seq, "note": "I was not driving",
                                                             "csrf": csrf_of(page)})
        assert r.status_code == 303
        assert 'data-status="open"' in c.get("/portal/record/%d" % link).text
        again = c.post("/portal/record/%d/disputes" % link, data={"seq": seq, "note": "again",
                                                                 "csrf": csrf_of(page)})
        assert again.status_code == 409
    _sid, staff_email = world.staff()
    with world.browser(staff_email) as c:
        page = c.get("/portal/staff/service").text
        assert "I was not driving" in page
        dispute_id = int(__import__("re").search(r'/portal/staff/disputes/(\d+)"', page).group(1))
        r = c.post("/portal/staff/disputes/%d" % dispute_id, data={"outcome": "upheld", "resolution": "photo shows "
                                                                  "another person", "csrf": csrf_of(page)})
        assert r.status_code == 303
    with world.browser(violator["email"]) as c:
        page = c.get("/portal/record/%d" % link).text
    assert 'data-status="upheld"' in page and "photo shows another person" in page


def test_the_records_export_verifies_with_the_log_reader(world, violator):
    """The downloaded log is a service-port export: the log reader checks every CRC and the whole chain."""
    import host_sim  # noqa: F401
    from host_sim.logtool import read_log

    with world.browser(violator["email"]) as c:
        r = c.get("/portal/record/%d/export" % violator["devices"][0])
    assert r.status_code == 200
    rd, _acked = read_log(r.content, raw=True)
    assert rd.problems == []
    assert any(x["name"] == "VIOLATION" for x in rd.records)
    view = world.office.handset_view(violator["handsets"][0]["device_id"])
    assert [x["seq"] for x in rd.records] == list(range(1, view["log_seq"] + 1))
    assert len(rd.records) >= len(violator["sim"].logged) - 2  # the last sync's own records come next time
    # one changed byte: the reader finds it
    bad = bytearray(r.content)
    bad[-30] ^= 1
    rd, _ = read_log(bytes(bad), raw=True)
    assert rd.problems


def test_authority_sees_only_its_drivers_and_downloads_the_report(world, violator):
    """The assigned authority sees the violation at a glance, the record with the rule, and a PDF report whose
    text names the violation and the rule; another driver's pages are 404 to it."""
    from pypdf import PdfReader

    other = world.driver()
    email = authority_for(world, violator["account_id"])
    with world.browser(email) as c:
        assert c.get("/portal/dashboard").headers["location"] == "/portal/authority"
        page = c.get("/portal/authority").text
        assert "/portal/authority/drivers/%d" % violator["account_id"] in page
        assert "/portal/authority/drivers/%d" % other["account_id"] not in page
        page = c.get("/portal/authority/drivers/%d" % violator["account_id"]).text
        assert "/portal/record/%d" % violator["devices"][0] in page
        rec = c.get("/portal/record/%d" % violator["devices"][0]).text
        assert "A.R.S. 28-1301(2)" in rec and "Dispute this event" not in rec
        r = c.get("/portal/authority/drivers/%d/report.pdf" % violator["account_id"],
                  params={"since": "2024-01-01"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
        assert "Compliance report" in text and "engine started without a passed test" in text
        assert "A.R.S. 28-1301(2)" in text and "State: AZ" in text
        for path in ("/portal/authority/drivers/%d" % other["account_id"],
                     "/portal/authority/drivers/%d/report.pdf" % other["account_id"],
                     "/portal/record/%d" % other["devices"][0], "/portal/record/%d/export" % other["devices"][0]):
            assert c.get(path).status_code == 404, path
