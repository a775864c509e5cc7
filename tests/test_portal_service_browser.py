"""The service pages in a real browser (Playwright, Debian's Chromium): find a center by ZIP, book, reschedule,
be refused inside 24 h; follow a module shipment from creation to return; upload a document and see it; a
monitoring authority sees its driver's violation (real firmware, uploaded through sync) with the rule cited and
downloads the report; the end of the program on the dashboard. axe-core on every new page, both languages,
phone and desktop width. One companion (SQLite) for the module."""

import datetime as dt
import functools

import pytest

from tests.companion_doubles import SyncedSim
from tests.portal_support import axe_everywhere, new_page, sign_in_page
from tests.service_support import authority_for, bypass_violation, local_slot, make_center, set_program

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.portal_support"]


def _english(page, lang):
    """On a Spanish page, the catalog's sentences (three words or more, no placeholder, translated to something
    else) still shown in English."""
    if lang != "es":
        return []
    text = page.inner_text("body")
    return [("english", m) for m in _sentences() if m in text]


@functools.lru_cache(maxsize=1)
def _sentences():
    from babel.messages.pofile import read_po

    from companion.app import i18n

    with open(i18n.LOCALES / "es" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale="es")
    return tuple(m.id for m in catalog if isinstance(m.id, str) and m.id and "%(" not in m.id
                 and len(m.id.split()) >= 3 and m.string and m.string != m.id)


def test_find_book_reschedule_and_refusal(browser, site):
    """ZIP -> nearest center -> book a free time -> move it; a visit within 24 h is refused with whom to call."""
    from companion.app.service.models import Appointment

    base = site.server.url
    cid = make_center(site, "Phoenix Center", "85004")
    make_center(site, "Tucson Center", "85701")
    d = site.driver()
    day, _h, _ts = local_slot("America/Phoenix", 3, "10:00")
    day2, _h2, _ts2 = local_slot("America/Phoenix", 4, "15:00")
    ctx, page = new_page(browser, "phone")
    try:
        sign_in_page(page, base, d["email"])
        page.goto(base + "/portal/centers")
        page.fill("#zip", "85003")
        page.click("form.card button[type=submit]")
        first = page.locator("ol.centers li").first
        assert "Phoenix Center" in first.inner_text() and "miles" in first.inner_text()
        first.locator("h3 a").click()
        page.fill("#date", day)
        page.click("form.inline button")
        page.check("input[name=time][value='10:00']")
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/portal/appointments/*")
        assert "%s 10:00 MST" % day in page.inner_text("main")
        page.fill("#date", day2)
        page.fill("#time", "15:00")
        page.click("form[action$='/reschedule'] button")
        page.wait_for_url("**/portal/appointments/*")
        assert "%s 15:00 MST" % day2 in page.inner_text("main")
        soon = int(dt.datetime.now(dt.UTC).timestamp()) + 10 * 3600
        with site.session() as s:
            a = Appointment(account_id=d["account_id"], center_id=cid, kind="inspection", status="booked",
                            starts_ts=soon, note="")
            s.add(a)
            s.commit()
            soon_id = a.id
        page.goto(base + "/portal/appointments/%d" % soon_id)
        text = page.inner_text("main")
        assert "within 24 hours" in text and "+1 602 555 0100" in text
        assert page.locator("form[action$='/reschedule']").count() == 0
    finally:
        ctx.close()


def test_shipment_from_creation_to_return(browser, site):
    """The worker creates the shipment; staff mark it shipped, delivered, returned; the driver follows it."""
    from companion.app.core import timebase
    from companion.app.models import Handset
    from companion.app.service import worker

    base = site.server.url
    d = site.driver()
    _sid, staff = site.staff()
    with site.session() as s:
        h = s.get(Handset, d["handsets"][0]["device_id"])
        h.reported = {"module_expiry": timebase.day_of(timebase.today() + dt.timedelta(days=7))}
        s.commit()
    worker.run_once(site.app.state.db, site.ctx.ps)
    ctx, page = new_page(browser)
    try:
        sign_in_page(page, base, d["email"])
        page.goto(base + "/portal/shipments")
        assert page.locator("li.shipment[data-status=created]").count() == 1
        page.click("header form[action='/portal/sign-out'] button")
        sign_in_page(page, base, staff)
        page.goto(base + "/portal/staff/shipments")
        item = page.locator("li.shipment").last
        item.locator("input[name=tracking]").fill("1Z999AA10123456784")
        item.locator("input[name=module_serial]").fill("5150")
        item.locator("form button").first.click()
        for status in ("delivered", "returned"):
            page.wait_for_url("**/portal/staff/shipments")
            page.goto(base + "/portal/staff/shipments")
            item = page.locator("li.shipment").last
            item.locator("select[name=status]").select_option(status)
            item.locator("form.inline button").click()
        page.click("header form[action='/portal/sign-out'] button")
        sign_in_page(page, base, d["email"])
        page.goto(base + "/portal/shipments")
        done = page.locator("li.shipment[data-status=returned]")
        assert done.count() == 1 and "1Z999AA10123456784" in done.inner_text()
    finally:
        ctx.close()


def test_upload_a_document_and_see_it(browser, site, tmp_path):
    """A PNG chosen in the file input is listed and downloads as it was."""
    from tests.test_portal_documents import png_bytes

    base = site.server.url
    d = site.driver()
    f = tmp_path / "licence.png"
    f.write_bytes(png_bytes())
    ctx, page = new_page(browser)
    try:
        sign_in_page(page, base, d["email"])
        page.goto(base + "/portal/documents")
        page.set_input_files("#file", str(f))
        page.click("form[enctype] button")
        page.wait_for_url("**/portal/documents")
        link = page.locator("li.doc a")
        assert link.inner_text() == "licence.png"
        with page.expect_download() as got:
            link.click()
        from pathlib import Path

        assert Path(got.value.path()).read_bytes() == png_bytes()
    finally:
        ctx.close()


def test_authority_sees_the_violation_with_the_rule_and_downloads_the_report(browser, site):
    """A bypass by the real firmware, uploaded through sync, is on the authority's page with Arizona's rule;
    the report downloads as a PDF naming it."""
    import io

    from pypdf import PdfReader

    base = site.server.url
    d = site.driver()
    set_program(site, d["account_id"], "AZ")
    bypass_violation(SyncedSim(base, d["handsets"][0]))
    court = authority_for(site, d["account_id"])
    ctx, page = new_page(browser)
    try:
        sign_in_page(page, base, court)
        page.goto(base + "/portal/authority")
        row = page.locator("table.compliance tbody tr").first
        assert row.locator("td").nth(1).inner_text() == "1"  # one violation
        row.locator("a").click()
        page.locator("a[href^='/portal/record/']").first.click()
        ev = page.locator("li.event.violations").first
        assert "A.R.S. 28-1301(2)" in ev.inner_text()
        page.go_back()
        with page.expect_download() as got:
            page.click("form[action$='report.pdf'] button")
        from pathlib import Path

        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(Path(got.value.path()).read_bytes())).pages)
        assert "A.R.S. 28-1301(2)" in text
    finally:
        ctx.close()


def test_the_end_of_the_program_on_the_dashboard(browser, site):
    """On the end date the dashboard says the certificate and the final report were sent."""
    from companion.app.service import worker

    base = site.server.url
    d = site.driver()
    set_program(site, d["account_id"], "AZ", dt.date.today())
    authority_for(site, d["account_id"])
    worker.run_once(site.app.state.db, site.ctx.ps)
    ctx, page = new_page(browser, "phone", js=False)
    try:
        sign_in_page(page, base, d["email"])
        page.goto(base + "/portal/dashboard")
        box = page.locator("[data-program=ended]")
        assert "final report was sent" in box.inner_text()
        assert box.locator("a").count() == 1
    finally:
        ctx.close()


def test_every_new_page_passes_axe_in_both_languages_and_widths(browser, site):
    """axe-core: no serious or critical violation on the service pages, English and Spanish, 390 px and
    desktop; and no sentence of the catalog is left in English on a Spanish page."""
    from companion.app.service import appointments
    from tests.service_support import driver_user

    base = site.server.url
    cid = make_center(site, "Axe Center", "85004")
    d = site.driver()
    set_program(site, d["account_id"], "AZ")
    bypass_violation(SyncedSim(base, d["handsets"][0]))
    court = authority_for(site, d["account_id"])
    _sid, staff = site.staff()
    _day, _h, ts = local_slot("America/Phoenix", 5, "09:00")
    with site.session() as s:
        a = appointments.book(s, site.ctx, driver_user(site, d["user_id"]), cid, "calibration", ts)
        s.commit()
    day = dt.date.today() + dt.timedelta(days=5)
    pages = {
        d["email"]: ["/portal/centers", "/portal/centers?zip=85004", "/portal/centers?zip=00000",
                     "/portal/centers/%d?date=%s" % (cid, day), "/portal/appointments",
                     "/portal/appointments/%d" % a.id, "/portal/record/%d" % d["devices"][0],
                     "/portal/documents", "/portal/shipments", "/portal/dashboard"],
        court: ["/portal/authority", "/portal/authority/drivers/%d" % d["account_id"],
                "/portal/record/%d" % d["devices"][0]],
        staff: ["/portal/staff/service", "/portal/staff/shipments"],
    }
    signed_out = ["/portal/centers?zip=85004", "/portal/centers/%d?date=%s" % (cid, day), "/portal/help"]
    found = axe_everywhere(browser, site, signed_out, pages, extra=_english)
    assert len(found) >= 60
    assert {k: v for k, v in found.items() if v} == {}
