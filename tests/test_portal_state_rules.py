"""The rules of the driver's state on the portal (generated from the presets, like docs/RULES.md) and Michigan's
violation classes on the record, the authority's list and the PDF report, from a violation the real firmware
(host_sim) logged and uploaded through sync. Both backends."""

import io

import pytest

from tests.companion_doubles import SyncedSim
from tests.portal_client import csrf_of
from tests.service_support import authority_for, bypass_violation, set_program

pytest_plugins = ["tests.portal_support"]



def _give_state(world, account_id, state):
    """The account's state: its handsets get the state's preset (the policy they run)."""
    from sqlalchemy import select

    from companion.app import crud
    from companion.app.models import Account, Handset

    with world.session() as s:
        account = s.get(Account, account_id)
        account.jurisdiction = state
        for h in s.scalars(select(Handset).where(Handset.account_id == account_id)):
            crud.apply_preset(s, h, account)
        s.commit()


@pytest.fixture(scope="module")
def michigan(world, portal_server):
    """A driver in Michigan (the handset runs MI@1) whose handset logged a bypass, uploaded through sync; the
    program's state on the record is set to another state, which the record must not cite."""
    d = world.driver()
    _give_state(world, d["account_id"], "MI")
    set_program(world, d["account_id"], "AZ")
    bypass_violation(SyncedSim(portal_server.url, d["handsets"][0]))
    return d


def test_the_portal_labels_are_the_rules_pages():
    from companion.app.portal import state_rules
    from presets import RULE_PARAMS, SOURCES, rules_page

    assert state_rules.LABELS == rules_page.LABELS and list(state_rules.LABELS) == list(RULE_PARAMS)
    assert set(state_rules.MARKS) == set(SOURCES)


def test_driver_reads_the_rules_of_the_state_the_handset_runs(world, michigan):
    import presets

    with world.browser(michigan["email"]) as c:
        page = c.get("/portal/rules").text
        assert "Rules of Michigan" in page and "MI@1" in page
        for prm in presets.load("MI").params.values():
            assert 'data-param="%s"' % prm.name in page
        assert "Mich. Admin. Code R 257.301a(j)" in page and "Three minor violations are a major violation." in page
        assert c.get("/portal/record/%d/rules" % michigan["devices"][0]).text.count("Rules of Michigan") == 1
        assert "/portal/rules" in c.get("/portal/help").text
        c.post("/portal/language", data={"lang": "es", "csrf": csrf_of(page)})
        es = c.get("/portal/rules").text
        assert "Punto de fallo" in es and "texto de la norma" in es
        c.post("/portal/language", data={"lang": "en", "csrf": csrf_of(es)})


def test_a_driver_without_a_preset_sees_the_defaults_marked_as_such(world, portal_server):
    d = world.driver()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/rules").text
    assert 'data-default="1"' in page and "They are not a state" in page
    assert 'data-param="fail_brac"' in page and "0.020 g/210 L" in page


def test_the_record_names_the_michigan_class_and_its_citation(world, michigan):
    with world.browser(michigan["email"]) as c:
        page = c.get("/portal/record/%d" % michigan["devices"][0]).text
    assert "Rules of MI apply." in page  # the preset the handset runs, not the program's AZ
    assert 'data-class="major"' in page and "tampering or circumvention" in page
    assert "Mich. Admin. Code R 257.301a(d)" in page
    assert "Major violations: <strong>1</strong>" in page


def test_the_authority_sees_minor_and_major_counts_and_the_report_names_them(world, michigan, portal_server):
    from pypdf import PdfReader

    other = world.driver()
    email = authority_for(world, michigan["account_id"])
    with world.browser(email) as c:
        listing = c.get("/portal/authority").text
        assert "Major violations" in listing and "<td>1</td>" in listing
        page = c.get("/portal/authority/drivers/%d" % michigan["account_id"]).text
        assert "Major violations</dt><dd>1</dd>" in page
        rules = c.get("/portal/authority/drivers/%d/rules" % michigan["account_id"]).text
        assert "Rules of Michigan" in rules
        assert c.get("/portal/authority/drivers/%d/rules" % other["account_id"]).status_code == 404
        assert c.get("/portal/record/%d/rules" % other["devices"][0]).status_code == 404
        r = c.get("/portal/authority/drivers/%d/report.pdf" % michigan["account_id"],
                  params={"since": "2024-01-01"})
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "minor violations: 0" in text and "major violations: 1" in text
    assert "Violation classes of MI" in text and "R 257.301a(d)" in text


def test_a_driver_may_not_read_another_drivers_rules_page(world, michigan):
    other = world.driver()
    with world.browser(other["email"]) as c:
        assert c.get("/portal/record/%d/rules" % michigan["devices"][0]).status_code == 404
        assert c.get("/portal/authority/drivers/%d/rules" % michigan["account_id"]).status_code in (403, 404)


def test_a_completed_visit_sets_the_next_date_by_the_interval_of_the_preset_the_handset_runs(world):
    """The account's own service period is 45 days, but the handset runs California's preset (60 days, Veh. Code
    23573(e)(1)): the next inspection date the dashboard shows and the handset counts to is 60 days on. A
    handset with no preset keeps the account's period."""
    import datetime as dt

    import presets
    from companion.app.accounts.models import User
    from companion.app.service import appointments
    from companion.app.service.models import Appointment
    from tests.service_support import make_center

    cid = make_center(world, "Fresno Center", "93721")
    days = presets.load("CA").params["service_days"].value
    assert days != 45
    for state, period in (("CA", days), (None, 45)):
        d = world.driver(service_period_days=45)
        if state:
            _give_state(world, d["account_id"], state)
        visit = int(dt.datetime.now(dt.UTC).timestamp()) + 3 * 86400
        with world.session() as s:
            a = Appointment(account_id=d["account_id"], device_id=d["devices"][0], center_id=cid,
                            kind="inspection", status="booked", starts_ts=visit, note="")
            s.add(a)
            staff = User(email="x-%s@example.org" % d["email"].split("@")[0], role="staff", name="", active=True,
                         phone="", address="", vehicles=[], email_prefs={}, language="en")
            s.add(staff)
            s.commit()
            appointments.complete(s, staff, a.id)
            s.commit()
        due = dt.datetime.fromtimestamp(visit, dt.UTC).date() + dt.timedelta(days=period)
        assert world.office.handset_view(d["handsets"][0]["device_id"])["desired"]["inspection_due"] == \
            due.isoformat(), state


def test_a_failed_start_violation_names_indianas_rule():
    from companion.app.records import rules, timeline
    from fsm import records as R

    assert rules.VIO_FAILED_START == R.VIO_FAILED_START
    assert rules.rule_for(R.VIO_FAILED_START, "IN").citation == "260 IAC 3-2-1(3)"
    assert not rules.rule_for(R.VIO_FAILED_START, "AZ").found
    _kind, _title, params = timeline.describe(R.VIOLATION, R.VIO_FAILED_START, 1, 0)
    assert params["cause"] == "failed start test"
    assert timeline.STARTUP_FAIL == R.STARTUP_FAIL


def test_signed_out_visitors_get_no_rules_page(world, michigan):
    for path in ("/portal/rules", "/portal/record/%d/rules" % michigan["devices"][0],
                 "/portal/authority/drivers/%d/rules" % michigan["account_id"]):
        with world.browser() as c:
            r = c.get(path)
        assert r.status_code in (303, 401, 404), path
        assert "Rules of Michigan" not in r.text


def test_a_program_cannot_start_after_it_ends_and_nothing_changes(world):
    import datetime as dt

    from companion.app.core.problems import Problem
    from companion.app.records import authority
    from companion.app.service.models import Program
    from tests.service_support import _staff

    d = world.driver()
    with world.session() as s:
        authority.set_program(s, _staff(s), d["account_id"], "MI", dt.date(2027, 1, 31), None, dt.date(2026, 3, 1))
        s.commit()
    with world.session() as s:
        with pytest.raises(Problem) as exc:
            authority.set_program(s, _staff(s), d["account_id"], None, None, None, dt.date(2027, 2, 1))
        assert exc.value.status == 422
        s.rollback()
    with world.session() as s:
        p = s.get(Program, d["account_id"])
        assert p.starts_on == dt.date(2026, 3, 1) and p.ends_on == dt.date(2027, 1, 31)
