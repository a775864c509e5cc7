"""The state rules pages and Michigan's violation classes in a real browser (Playwright, Debian's Chromium):
axe-core finds no serious or critical violation, English and Spanish, phone and desktop width."""

import pytest
from sqlalchemy import select

from tests.companion_doubles import SyncedSim
from tests.service_support import authority_for, bypass_violation
from tests.test_portal_service_browser import _page, _serious, _sign_in, browser, site  # noqa: F401
from tests.test_portal_state_rules import _give_state

pytestmark = pytest.mark.browser


def test_the_rules_pages_pass_axe_in_both_languages_and_widths(browser, site):  # noqa: F811
    from companion.app.accounts.models import User

    base = site.server.url
    d = site.driver()
    _give_state(site, d["account_id"], "MI")
    bypass_violation(SyncedSim(base, d["handsets"][0]))
    plain = site.driver()
    court = authority_for(site, d["account_id"])
    pages = {
        d["email"]: ["/portal/rules", "/portal/record/%d/rules" % d["devices"][0], "/portal/record/%d" % d["devices"][0],
                     "/portal/help"],
        plain["email"]: ["/portal/rules"],
        court: ["/portal/authority", "/portal/authority/drivers/%d" % d["account_id"],
                "/portal/authority/drivers/%d/rules" % d["account_id"]],
    }
    found, checked = {}, 0
    for viewport in ("desktop", "phone"):
        for lang in ("en", "es"):
            ctx, page = _page(browser, viewport)
            try:
                for who, paths in pages.items():
                    with site.session() as s:
                        s.scalar(select(User).where(User.email == who)).language = lang
                        s.commit()
                    _sign_in(page, base, who)
                    for path in paths:
                        page.goto(base + path)
                        assert page.locator("html").get_attribute("lang") == lang
                        found[(viewport, lang, path)] = _serious(page)
                        checked += 1
                    page.click("header form[action='/portal/sign-out'] button")
            finally:
                ctx.close()
    assert checked == 32
    assert {k: v for k, v in found.items() if v} == {}
