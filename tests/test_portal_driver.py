"""Driver pages over HTTP: dashboard cards, unlock codes within the limit, the reset fee and the clear's
progress while a simulated handset (real firmware) syncs through the real HTTP modem, profile with audit,
notifications, help; bad input leaves nothing stored. Both backends."""

import datetime as dt
import re

from sqlalchemy import select

from host_sim.http_modem import MemoryModem  # noqa: F401  (firmware on sys.path for the doubles)
from tests.billing_support import add_card, method_ids
from tests.companion_doubles import SyncedSim
from tests.portal_client import csrf_of

pytest_plugins = ["tests.portal_support"]


def test_dashboard_shows_one_card_per_device_with_payment_and_service(world):
    """Two devices give two cards; the next payment comes from the account's schedule."""
    first = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    d = world.driver(devices=2, first_due=first, installment_cents=12345)
    world.office.call("PATCH", "/handsets/%d/desired" % d["handsets"][0]["device_id"],
                      json={"service_due": "2030-01-15", "inspection_due": "2030-02-01"})
    with world.browser(d["email"]) as c:
        page = c.get("/portal/dashboard").text
    assert page.count('class="card device') == 2
    assert "$123.45" in page and first in page
    assert "2030-01-15" in page and "2030-02-01" in page
    assert "Not reported yet" in page


def test_dashboard_shows_a_synced_handsets_lockout_and_pays_the_fee_to_applied(world, portal_server):
    """A violation lockout reported at sync shows on the card; paying the fee shows paid -> queued, then
    delivered and applied as the handset syncs; notifications follow."""
    d = world.driver()
    hs = d["handsets"][0]
    sim = SyncedSim(portal_server.url, hs)
    sim.violation_lockout()
    sim.settle()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/dashboard").text
        assert "Locked out after a violation" in page and "Cause: power cuts." in page
        assert "Pay the reset fee" in page
        add_card(c)
        form = c.get("/portal/devices/%d/reset-fee" % d["devices"][0], follow_redirects=True)
        assert "$75.00" in form.text
        body = {"key": "ref-" + "a" * 12, "method_id": str(method_ids(c)[0]), "csrf": csrf_of(form.text)}
        r = c.post("/portal/billing/reset-fee/%d" % d["devices"][0], data=body)
        assert r.status_code == 303
        paid = c.get(r.headers["location"]).text
        assert 'data-status="succeeded"' in paid
        progress = re.search(r'href="(/portal/clears/\d+)"', paid).group(1)
        page = c.get(progress).text
        assert 'data-refresh="3"' in page and 'data-status="queued"' in page
        # the same form submitted twice is one payment; paying again for this lockout is refused
        again = c.post("/portal/billing/reset-fee/%d" % d["devices"][0], data=body)
        assert again.headers["location"] == r.headers["location"]
        body["key"] = "ref-" + "b" * 12
        twice = c.post("/portal/billing/reset-fee/%d" % d["devices"][0], data=body)
        assert twice.status_code == 409 and "paid already" in twice.text
        sim.sync()
        assert 'data-status="delivered"' in c.get(progress).text
        sim.settle()
        page = c.get(progress).text
        assert 'data-status="applied"' in page and 'data-refresh' not in page
        assert page.count('class="done"') == 4
        assert not sim.fsm.vlock
    world.deliver()
    with world.browser(d["email"]) as c:
        notes = c.get("/portal/notifications").text
    assert "Lockout cleared" in notes and "Reset fee received" in notes and "Handset locked out" in notes


def test_unlock_codes_within_the_accounts_limit(world, portal_server):
    """Codes come with validity and button steps; past the per-period limit the page says so; the code
    opens the real handset."""
    d = world.driver(codes_per_period=1)
    with world.browser(d["email"]) as c:
        form = c.get("/portal/devices/%d/code" % d["devices"][0])
        r = c.post("/portal/devices/%d/code" % d["devices"][0], data={"action": "clear",
                                                                     "csrf": csrf_of(form.text)})
        assert r.status_code == 200
        import re

        code = re.search(r'class="code"[^>]*>(\d{8})<', r.text).group(1)
        assert "Valid until" in r.text and "then OK" in r.text
        r2 = c.post("/portal/devices/%d/code" % d["devices"][0], data={"action": "clear",
                                                                      "csrf": csrf_of(form.text)})
        assert r2.status_code == 429 and "used up" in r2.text
    # the driver types it on the real firmware's three buttons, as the page says
    from board import LEFT, OK, RIGHT
    from companion.app.portal.help import entry_steps

    sim = SyncedSim(portal_server.url, d["handsets"][0])
    sim.violation_lockout()
    sim.sim.world.key(True)
    sim.sim.wake()
    sim.sim.run(3000)

    def press(mask):
        sim.sim.world.press(mask)
        sim.sim.wake()
        sim.sim.run(150)

    press(OK)
    for _digit, button, presses in entry_steps(code):
        for _ in range(presses):
            press(RIGHT if button == "RIGHT" else LEFT)
        press(OK)
    sim.sim.run(3000)
    assert not sim.fsm.vlock


def test_codes_refused_where_the_policy_allows_none(world):
    """An account whose policy allows no codes gets no code form, and a POST is refused (403)."""
    d = world.driver(allow_codes=False)
    with world.browser(d["email"]) as c:
        form = c.get("/portal/devices/%d/code" % d["devices"][0])
        assert "does not allow unlock codes" in form.text
        r = c.post("/portal/devices/%d/code" % d["devices"][0], data={"action": "clear",
                                                                     "csrf": csrf_of(form.text)})
        assert r.status_code == 403


def test_profile_changes_are_saved_and_audited(world):
    """Phone, address, vehicles, preferences and language are saved; each change has an audit entry."""
    from companion.app.accounts.models import AuditEntry, User

    d = world.driver()
    with world.browser(d["email"]) as c:
        page = c.get("/portal/profile")
        r = c.post("/portal/profile", data={"name": "Dana Q. Driver", "phone": "+1 (602) 555-0100",
                                            "address": "1 Main St\nPhoenix AZ", "vehicle0": "Blue Civic",
                                            "vehicle1": "", "vehicle2": "", "pref-lockout": "on",
                                            "language": "es", "csrf": csrf_of(page.text)})
        assert r.status_code == 200 and 'lang="es"' in r.text
    with world.session() as s:
        u = s.get(User, d["user_id"])
        assert (u.phone, u.address, u.vehicles, u.language) == ("+1 (602) 555-0100", "1 Main St\nPhoenix AZ",
                                                                 ["Blue Civic"], "es")
        assert u.email_prefs["lockout"] is True and u.email_prefs["payment-due"] is False
        fields = {e.detail["field"] for e in s.scalars(select(AuditEntry).where(
            AuditEntry.subject_id == d["user_id"], AuditEntry.action == "profile-change"))}
    assert fields == {"name", "phone", "address", "vehicles", "email_prefs", "language"}


def test_bad_profile_input_is_refused_and_nothing_is_stored(world):
    """Overlong fields, a bad phone, control characters: a message on the form, nothing changed; HTML in a
    name is stored as text and shown escaped."""
    from companion.app.accounts.models import User

    d = world.driver()
    with world.browser(d["email"]) as c:
        csrf = csrf_of(c.get("/portal/profile").text)
        base = {"name": "Ok Name", "phone": "", "address": "", "language": "en", "csrf": csrf}
        for bad in ({"phone": "call me maybe"}, {"name": "x" * 201}, {"address": "a" * 401},
                    {"name": "tab\there"}, {"vehicle0": "v" * 81}, {"language": "fr"}, {"name": "   "}):
            r = c.post("/portal/profile", data={**base, **bad, "phone": bad.get("phone", "+1 555 0100 22")})
            assert r.status_code == 422, bad
            assert 'class="error"' in r.text
        with world.session() as s:
            u = s.get(User, d["user_id"])
            assert (u.name, u.phone) == ("Dana Driver", "")
        r = c.post("/portal/profile", data={**base, "name": "<script>alert(1)</script> ñandú 🚗"})
        assert r.status_code == 200
        assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
        assert "ñandú 🚗" in r.text


def test_help_searches_the_faq_and_shows_the_firmware_screens(world):
    """The FAQ filters by words; the training shows the recorded screens."""
    with world.browser() as c:
        page = c.get("/portal/help", params={"q": "mouthpiece rinse"}).text
        assert "How do I look after the mouthpiece?" in page and "rolling retest" not in page
        assert "No question matches" in c.get("/portal/help", params={"q": "zzzz"}).text
        full = c.get("/portal/help").text
        assert 'class="lcd"' in full and "BLOW" in full


def test_notifications_mark_read_is_the_owners_only(world):
    """Marking another user's notification read is 404 and changes nothing."""
    from companion.app.notifications.models import Notification

    a, b = world.driver(), world.driver()
    with world.session() as s:
        from companion.app.accounts.models import User
        from companion.app.notifications import services as notes

        n = notes.notify(s, s.get(User, b["user_id"]), "payment-due", {"amount": "$1.00", "date": "2030-01-01"})
        s.commit()
        nid = n.id
    with world.browser(a["email"]) as c:
        csrf = csrf_of(c.get("/portal/notifications").text)
        assert c.post("/portal/notifications/%d/read" % nid, data={"csrf": csrf}).status_code == 404
    with world.session() as s:
        assert s.get(Notification, nid).read is False


def test_worker_record_constants_are_the_firmwares():
    """The worker reads LOCKOUT records and violation causes by the firmware's numbers."""
    from companion.app.notifications import worker
    from companion.app.portal import handset_words
    from fsm import records

    assert (worker.REC_LOCKOUT, worker.LOCK_VIOLATION) == (records.LOCKOUT, records.LOCK_VIOLATION)
    vio = {getattr(records, n): n for n in dir(records) if n.startswith("VIO_")}
    assert set(vio) | {0} == set(handset_words.CAUSES)


def test_dashboard_page_weight_is_under_100_kb(world):
    """The dashboard's HTML plus every stylesheet and script it loads stays under 100 KB."""
    import re

    d = world.driver(devices=3)
    with world.browser(d["email"]) as c:
        html = c.get("/portal/dashboard").content
        assets = re.findall(rb'(?:href|src)="(/portal/static/[^"]+)"', html)
        assert len(assets) == 2
        total = len(html) + sum(len(c.get(a.decode()).content) for a in assets)
    assert total < 100 * 1024
