"""Shared fixtures of the portal tests (registered with `pytest_plugins`): a real SMTP server, a companion
with the portal on each backend, staff/driver set-up through the service layer, and a signed-in HTTP client;
for the browser tests, Debian's Chromium, a companion (SQLite) per module, pages at a width, sign-in, axe-core
and adding a card."""

import contextlib
import datetime as dt
import os
import tempfile
import uuid

import httpx
import pytest

from companion import testing
from companion.app.portal.config import PortalSettings
from tests.portal_client import PASSWORD, sign_in

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def fast_portal_settings(smtp_port: int, base_url: str = "http://127.0.0.1", **extra) -> PortalSettings:
    """Portal settings for tests: Argon2id with small parameters (the bench measures the real ones); uploaded
    and produced documents in a fresh temporary folder, never the working directory."""
    extra.setdefault("DOCUMENTS_DIR", tempfile.mkdtemp(prefix="portal-documents-"))
    return PortalSettings(_env_file=None, ARGON2_TIME_COST=1, ARGON2_MEMORY_KIB=1024, ARGON2_PARALLELISM=1,
                          SMTP_PORT=smtp_port, BASE_URL=base_url, WORKER_POLL_S=0.2, MAIL_RETRY_BASE_S=1,
                          **extra)


@pytest.fixture(scope="module")
def mail():
    """A real SMTP server (aiosmtpd) in this process."""
    from companion.mailcatcher import MailCatcher

    with MailCatcher() as box:
        yield box


@pytest.fixture(scope="module", params=BACKENDS)
def portal_backend(request, tmp_path_factory):
    """Settings for a fresh database of each backend."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = "sqlite:///" + str(tmp_path_factory.mktemp("portal") / "companion.db")
        else:
            reason = testing.pg_unavailable_reason()
            if reason:
                pytest.skip(reason)
            url = stack.enter_context(testing.fresh_pg_database("pytest_portal"))
        yield testing.settings_for(url, testing.test_master_keys())


@pytest.fixture(scope="module")
def portal_server(portal_backend, mail, tmp_path_factory):
    """A companion with the portal on a free port; emails go to `mail`, documents under pytest's temporary
    directory."""
    port = testing.free_port()
    ps = fast_portal_settings(mail.port, "http://127.0.0.1:%d" % port,
                              DOCUMENTS_DIR=str(tmp_path_factory.mktemp("docs")))
    with testing.ServerThread(portal_backend, port=port, portal_settings=ps) as srv:
        yield srv


class PageClient(httpx.Client):
    """An httpx client that may be used in a `with` block after its first request (signed in already)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class World:
    """Set-up through the real services: staff, accounts, handsets, drivers who claimed their account."""

    def __init__(self, server, mail):
        self.server = server
        self.mail = mail
        self.app = server.app
        self.office = testing.Backoffice(server.url)

    @property
    def ctx(self):
        return self.app.state.portal

    def session(self):
        return self.app.state.db.sessions()

    def deliver(self):
        """One round of the worker (notifications noticed, outbox sent to the SMTP server)."""
        from companion.app.notifications import worker

        return worker.run_once(self.app.state.db, self.ctx.ps)

    def deliver_billing(self):
        """One round of the worker with billing's work first (auto-pay, unsettled attempts, webhooks)."""
        from companion.app.notifications import worker

        return worker.run_once(self.app.state.db, self.ctx.ps, self.app.state.billing)

    def staff(self, email=None, password=PASSWORD):
        """A staff user with a password."""
        from companion.app.accounts import staff

        email = email or "staff-%s@example.org" % uuid.uuid4().hex[:8]
        with self.session() as s:
            user = staff.create_staff_user(s, self.ctx, email, password)
            s.commit()
            return user.id, email

    def driver(self, devices=1, first_due=None, claim=True, language="en", **terms):
        """An account with `devices` handsets and its driver; returns a dict of ids, email, invitation."""
        from companion.app.accounts import staff
        from companion.app.schemas import AccountCreate

        email = "driver-%s@example.org" % uuid.uuid4().hex[:8]
        first_due = first_due or (dt.date.today() + dt.timedelta(days=10)).isoformat()
        body = {"name": "Dana Driver", "schedule": "monthly", "first_due": first_due, "installment_cents": 9000}
        body.update(terms)
        with self.session() as s:
            account, inv = staff.open_driver_account(s, self.ctx, None, AccountCreate(**body), email, language)
            s.commit()
            out = {"account_id": account.id, "user_id": inv.user.id, "email": email,
                   "customer_id": inv.customer_id, "temporary": inv.temporary_password, "claim_url": inv.claim_url,
                   "devices": [], "handsets": []}
        for i in range(devices):
            hs = self.office.handset(None, serial="HS-%s" % uuid.uuid4().hex[:8])
            with self.session() as s:
                link = staff.link_device(s, None, out["account_id"], "interlock", hs["device_id"],
                                         "Car %d" % (i + 1))
                s.commit()
                out["devices"].append(link.id)
            out["handsets"].append(hs)
        if claim:
            from companion.app.accounts import services as accounts

            token = inv.claim_url.rsplit("/", 1)[1]
            with self.session() as s:
                accounts.claim(s, self.ctx, token, PASSWORD)
                s.commit()
        return out

    def browser(self, email=None, password=PASSWORD):
        """An httpx client of the pages, signed in when email is given."""
        c = PageClient(base_url=self.server.url, timeout=30, follow_redirects=False)
        if email:
            sign_in(c, email, password)
        return c

    def api_token(self, email, password=PASSWORD):
        """A bearer token of the JSON API."""
        r = httpx.post(self.server.url + "/api/v1/portal/token",
                       data={"grant_type": "password", "username": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def world(portal_server, mail):
    """The set-up helper of the module's server."""
    w = World(portal_server, mail)
    yield w
    w.office.close()


# ---- the browser tests (Playwright driving Debian's Chromium) ---------------------------------------------------
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
    """A companion with the portal (SQLite), an SMTP server, and the set-up helper, for one test module."""
    from companion.mailcatcher import MailCatcher

    settings = testing.settings_for("sqlite:///" + str(tmp_path_factory.mktemp("browser") / "c.db"),
                                    testing.test_master_keys())
    with MailCatcher() as box:
        port = testing.free_port()
        ps = fast_portal_settings(box.port, "http://127.0.0.1:%d" % port,
                                  DOCUMENTS_DIR=str(tmp_path_factory.mktemp("browser-docs")))
        with testing.ServerThread(settings, port=port, portal_settings=ps) as srv:
            w = World(srv, box)
            yield w
            w.office.close()


def new_page(browser, viewport="desktop", js=True):
    """(context, page) at a viewport's width, with or without script; the caller closes the context."""
    ctx = browser.new_context(viewport=VIEWPORTS[viewport], java_script_enabled=js, locale="en-US",
                              accept_downloads=True)
    ctx.set_default_timeout(20000)
    return ctx, ctx.new_page()


def sign_in_page(page, base, identity, password=PASSWORD):
    """Sign in through the form."""
    page.goto(base + "/portal/sign-in")
    page.fill("#identity", identity)
    page.fill("#password", password)
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/portal/*")


def serious(page):
    """axe-core's serious and critical violations on the page: [(rule, impact, nodes)]."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [(v["id"], v["impact"], len(v["nodes"])) for v in result.response["violations"]
            if v["impact"] in ("serious", "critical")]


def add_card(page, base, number="4242424242424242"):
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


def axe_everywhere(browser, site, signed_out, pages, extra=None):
    """axe-core on every page at both widths and in both languages: `signed_out` paths, then each user's paths
    (`pages`: email -> paths) signed in with that language as theirs. {(viewport, lang, path): serious
    violations} ("out " before a signed-out path; a path two users visit keeps both findings); `extra(page, lang)`
    adds findings of its own to each page."""
    from sqlalchemy import select

    from companion.app.accounts.models import User

    base = site.server.url
    found = {}
    for viewport in ("desktop", "phone"):
        for lang in ("en", "es"):
            ctx, page = new_page(browser, viewport)
            try:
                page.goto(base + "/portal/sign-in")
                if lang == "es":
                    page.click("form.lang button")
                for path in signed_out:
                    page.goto(base + path)
                    assert page.locator("html").get_attribute("lang") == lang
                    found[(viewport, lang, "out " + path)] = serious(page) + (extra(page, lang) if extra else [])
                for who, paths in pages.items():
                    with site.session() as s:
                        s.scalar(select(User).where(User.email == who)).language = lang
                        s.commit()
                    sign_in_page(page, base, who)
                    for path in paths:
                        page.goto(base + path)
                        assert page.locator("html").get_attribute("lang") == lang
                        found[(viewport, lang, path)] = (found.get((viewport, lang, path), []) + serious(page)
                                                         + (extra(page, lang) if extra else []))
                    page.click("header form[action='/portal/sign-out'] button")
                    with site.session() as s:
                        s.scalar(select(User).where(User.email == who)).language = "en"
                        s.commit()
            finally:
                ctx.close()
    return found
