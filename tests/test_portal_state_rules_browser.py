"""The state rules pages and Michigan's violation classes in a real browser (Playwright, Debian's Chromium):
axe-core finds no serious or critical violation, English and Spanish, phone and desktop width."""

import pytest

from tests.companion_doubles import SyncedSim
from tests.portal_support import axe_everywhere
from tests.service_support import authority_for, bypass_violation
from tests.test_portal_state_rules import _give_state

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.portal_support"]


def test_the_rules_pages_pass_axe_in_both_languages_and_widths(browser, site):
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
    found = axe_everywhere(browser, site, [], pages)
    assert len(found) == 28  # 8 paths (/portal/rules twice: two drivers, one key) x 2 widths x 2 languages
    assert {k: v for k, v in found.items() if v} == {}
