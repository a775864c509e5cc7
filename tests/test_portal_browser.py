"""The portal in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium). A driver claims
the account from the email, signs in, sees the dashboard, gets an unlock code, pays the reset fee and watches
the clear reach "applied" while a simulated handset (real firmware, real HTTP modem) syncs, changes the email
through the mail the SMTP server received, and switches to Spanish; at desktop width with script and at
390 px without script. axe-core checks every page, signed in and out, in both languages.

One browser, one companion (SQLite) and one SMTP server for the module (tests/portal_support.py)."""

import threading
import time

import pytest

from tests.companion_doubles import SyncedSim
from tests.portal_client import PASSWORD
from tests.portal_support import add_card, axe_everywhere, new_page, sign_in_page

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.portal_support"]


def _no_horizontal_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport,js", [("desktop", True), ("phone", True), ("phone", False)])
def test_driver_flow_in_the_browser(browser, site, viewport, js):
    """Claim, sign in, dashboard, code, reset fee watched to applied, email change verified, Spanish."""
    base = site.server.url
    d = site.driver(claim=False)
    site.deliver()
    claim = site.mail.link(d["email"], "/portal/claim/")
    ctx, page = new_page(browser, viewport, js)
    try:
        # claim from the emailed link
        page.goto(claim)
        page.fill("#password", PASSWORD)
        page.fill("#confirm", PASSWORD)
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/portal/dashboard")
        assert page.locator("h1").inner_text().startswith("Hello")
        # sign out and in again
        page.click("header form[action='/portal/sign-out'] button")
        page.wait_for_url("**/portal/sign-in")
        sign_in_page(page, base, d["email"])
        page.wait_for_url("**/portal/dashboard")
        card = page.locator("section.device")
        assert card.count() == 1 and "Not reported yet" in card.inner_text()
        if js:
            _no_horizontal_scroll(page)
        # an unlock code
        page.click("text=Get an unlock code")
        page.click("form.card button[type=submit]")
        code = page.locator("p.code").inner_text()
        assert len(code) == 8 and code.isdigit()
        assert page.locator("ol.steps li").count() == 10
        # the handset locks out and syncs; the driver pays the fee and watches the clear
        sim = SyncedSim(base, d["handsets"][0])
        sim.violation_lockout()
        sim.settle()
        page.goto(base + "/portal/dashboard")
        assert "Locked out after a violation" in page.locator("section.device").inner_text()
        add_card(page, base)
        page.goto(base + "/portal/dashboard")
        page.click("text=Pay the reset fee")
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/portal/billing/payments/*")
        assert page.locator("#payment-status").get_attribute("data-status") == "succeeded"
        page.click("text=Follow the clear")
        page.wait_for_url("**/portal/clears/*")
        assert page.locator("#clear-status").get_attribute("data-status") == "queued"

        def handset_syncs():
            time.sleep(1.0)
            sim.sync()
            time.sleep(1.0)
            sim.settle()

        t = threading.Thread(target=handset_syncs)
        t.start()
        try:
            if js:  # the page follows the clear by itself
                page.wait_for_selector("#clear-status[data-status=applied]", timeout=40000)
            else:  # without script the driver follows "Check now"
                t.join(timeout=60)
                page.click("text=Check now")
                assert page.locator("#clear-status").get_attribute("data-status") == "applied"
        finally:
            t.join(timeout=60)
        assert page.locator("ol.progress li.done").count() == 4
        assert not sim.fsm.vlock
        # email change through the mail the SMTP server received
        new = "new-" + d["email"]
        page.goto(base + "/portal/profile")
        page.fill("#email", new)
        page.fill("#email-password", PASSWORD)
        page.click("form[action='/portal/profile/email'] button[type=submit]")
        assert "We sent a link" in page.locator("[role=status]").inner_text()
        site.deliver()
        page.goto(site.mail.link(new, "/portal/verify-email/"))
        page.click("form.card button[type=submit]")
        assert new in page.locator("[role=status]").inner_text()
        page.click("header form[action='/portal/sign-out'] button")
        sign_in_page(page, base, new)
        page.wait_for_url("**/portal/dashboard")
        # Spanish
        page.click("form.lang button")
        page.wait_for_url("**/portal/dashboard")
        assert page.locator("html").get_attribute("lang") == "es"
        assert page.locator("h1").inner_text().startswith("Hola")
        assert "Próximo pago" in page.locator("main").inner_text()
        page.goto(base + "/portal/profile")
        assert page.locator("#language").input_value() == "es"
        if js:
            _no_horizontal_scroll(page)
    finally:
        ctx.close()


def test_every_page_passes_axe_in_both_languages_and_widths(browser, site):
    """axe-core: no serious or critical violation on any page, signed out and in, English and Spanish, at
    390 px and desktop width."""
    base = site.server.url
    d = site.driver(devices=2)
    staff_id, staff_email = site.staff()
    sim = SyncedSim(base, d["handsets"][1])
    sim.violation_lockout()
    sim.settle()
    pay = site.office.pay(d["account_id"], "reset_fee", 7500, device_id=d["handsets"][1]["device_id"])
    site.deliver()
    with site.browser(d["email"]) as c:
        from tests.billing_support import add_card
        from tests.billing_support import pay as pay_now

        add_card(c)
        attempt = pay_now(c, "other", "10.00").headers["location"]
        c.get("/portal/billing/invoices")
    out_pages = ["/portal/sign-in", "/portal/reset", "/portal/help", "/portal/help?q=code",
                 "/portal/claim/not-a-token"]
    driver_pages = ["/portal/dashboard", "/portal/devices/%d/code" % d["devices"][0],
                    "/portal/devices/%d/reset-fee" % d["devices"][1], "/portal/clears/%d" % pay["id"],
                    "/portal/profile", "/portal/notifications", "/portal/help", "/portal/password",
                    "/portal/devices/999/code", "/portal/billing", "/portal/billing/methods",
                    "/portal/billing/pay", "/portal/billing/history", "/portal/billing/invoices",
                    "/portal/billing/agreement", attempt, "/portal/billing/reset-fee/%d" % d["devices"][1]]
    found = axe_everywhere(browser, site, out_pages, {d["email"]: driver_pages, staff_email: ["/portal/staff"]})
    assert len(found) >= 60
    bad = {k: v for k, v in found.items() if v}
    assert bad == {}
