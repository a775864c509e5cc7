"""The portal in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium). A driver claims
the account from the email, signs in, sees the dashboard, gets an unlock code, pays the reset fee and watches
the clear reach "applied" while a simulated handset (real firmware, real HTTP modem) syncs, changes the email
through the mail the SMTP server received, and switches to Spanish; at desktop width with script and at
390 px without script. axe-core checks every page, signed in and out, in both languages.

One browser for the module; one companion (SQLite) and one SMTP server for the module."""

import os
import threading
import time

import pytest

from companion import testing
from tests.companion_doubles import SyncedSim
from tests.portal_client import PASSWORD

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (skips with the reason when it is not installed)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):  # .ci/run installs it: a missing browser there is a broken set-up, not a skip
            pytest.fail(CHROMIUM + " is missing although .ci/run installs it")
        pytest.skip(CHROMIUM + " is missing: `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A companion with the portal (SQLite), an SMTP server, and the set-up helper."""
    from companion.mailcatcher import MailCatcher
    from tests.portal_support import World, fast_portal_settings

    settings = testing.settings_for("sqlite:///" + str(tmp_path_factory.mktemp("browser") / "c.db"),
                                    testing.test_master_keys())
    with MailCatcher() as mail:
        port = testing.free_port()
        ps = fast_portal_settings(mail.port, "http://127.0.0.1:%d" % port)
        with testing.ServerThread(settings, port=port, portal_settings=ps) as srv:
            w = World(srv, mail)
            yield w
            w.office.close()


def _page(browser, viewport, js=True):
    ctx = browser.new_context(viewport=VIEWPORTS[viewport], java_script_enabled=js, locale="en-US")
    ctx.set_default_timeout(20000)
    return ctx, ctx.new_page()


def _sign_in(page, base, identity, password=PASSWORD):
    page.goto(base + "/portal/sign-in")
    page.fill("#identity", identity)
    page.fill("#password", password)
    page.click("form.card button[type=submit]")


def _add_card(page, base, number="4242424242424242"):
    """Add a card: the form posts to the gateway's tokenization endpoint, the portal confirms the token."""
    page.goto(base + "/portal/billing/methods")
    page.fill("#number", number)
    page.fill("#exp_month", "12")
    page.fill("#exp_year", "2031")
    page.fill("#cvc", "123")
    page.click("#card-form button[type=submit]")
    page.wait_for_url("**/portal/billing/methods/new*")
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/portal/billing/methods")


def _no_horizontal_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport,js", [("desktop", True), ("phone", True), ("phone", False)])
def test_driver_flow_in_the_browser(browser, site, viewport, js):
    """Claim, sign in, dashboard, code, reset fee watched to applied, email change verified, Spanish."""
    base = site.server.url
    d = site.driver(claim=False)
    site.deliver()
    claim = site.mail.link(d["email"], "/portal/claim/")
    ctx, page = _page(browser, viewport, js)
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
        _sign_in(page, base, d["email"])
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
        _add_card(page, base)
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
        _sign_in(page, base, new)
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


def _serious(page):
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [(v["id"], v["impact"], len(v["nodes"])) for v in result.response["violations"]
            if v["impact"] in ("serious", "critical")]


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
    found = {}
    checked = 0
    for viewport in ("desktop", "phone"):
        for lang in ("en", "es"):
            ctx, page = _page(browser, viewport)
            try:
                page.goto(base + "/portal/sign-in")
                if lang == "es":
                    page.click("form.lang button")
                for path in out_pages:
                    page.goto(base + path)
                    assert page.locator("html").get_attribute("lang") == lang
                    found[(viewport, lang, path)] = _serious(page)
                    checked += 1
                for who, pages in ((d["email"], driver_pages), (staff_email, ["/portal/staff"])):
                    _sign_in(page, base, who)
                    page.wait_for_url("**/portal/*")
                    if lang == "es":
                        from sqlalchemy import select

                        from companion.app.accounts.models import User

                        with site.session() as s:
                            u = s.scalar(select(User).where(User.email == who))
                            u.language = "es"
                            s.commit()
                    for path in pages:
                        page.goto(base + path)
                        assert page.locator("html").get_attribute("lang") == lang
                        found[(viewport, lang, path)] = _serious(page)
                        checked += 1
                    page.click("header form[action='/portal/sign-out'] button")
                    with site.session() as s:
                        from sqlalchemy import select

                        from companion.app.accounts.models import User

                        u = s.scalar(select(User).where(User.email == who))
                        u.language = "en"
                        s.commit()
            finally:
                ctx.close()
    assert checked >= 60
    bad = {k: v for k, v in found.items() if v}
    assert bad == {}
