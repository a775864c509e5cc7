"""Billing in a real browser (Playwright driving Debian's Chromium): add a card through the gateway's form,
choose twice a month from its preview, turn on auto-pay, let the worker run past a due date (the billing
clock moved), see the receipt arrive at the SMTP server, download the invoice PDF and read it; a declined
card's path. With and without script."""

import datetime as dt
import io
from pathlib import Path

import pytest

from tests.billing_support import billing_day
from tests.portal_support import add_card, new_page, serious, sign_in_page

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.portal_support"]


@pytest.mark.parametrize("js", [True, False])
def test_pay_flow_in_the_browser(browser, site, js):
    """Card, twice a month with its preview, auto-pay on, the worker past the due date, receipt email,
    invoice PDF; then a declined card's payment says why and the dashboard shows nothing paid."""
    from pypdf import PdfReader

    base = site.server.url
    first = dt.date.today() + dt.timedelta(days=3)
    d = site.driver(first_due=first.isoformat(), installment_cents=9000)
    ctx, page = new_page(browser, "phone", js)
    try:
        sign_in_page(page, base, d["email"])
        page.wait_for_url("**/portal/dashboard")
        add_card(page, base)
        assert "4242" in page.locator("main").inner_text()
        # twice a month: the preview first, then the change
        page.goto(base + "/portal/billing")
        page.select_option("#schedule", "semimonthly")
        page.click("form[action='/portal/billing/frequency/preview'] button")
        assert "$45.00" in page.locator("#effective").inner_text()
        assert "rounded half up" in page.locator("#rule").inner_text()
        assert page.locator("#preview tbody tr").count() == 6
        page.click("form[action='/portal/billing/frequency'] button")
        page.wait_for_url("**/portal/billing")
        # auto-pay on
        page.click("form[action='/portal/billing/autopay'] button")
        assert "Stop automatic payments" in page.locator("main").inner_text()
        page.goto(base + "/portal/dashboard")
        assert "Next automatic payment: $45.00 on " + first.isoformat() in page.locator("#next-autopay").inner_text()
        assert serious(page) == [] if js else True
        # the worker runs on the due date; the receipt arrives by email
        with billing_day(first):
            site.deliver_billing()
            site.deliver()
        receipts = [m for m in site.mail.to(d["email"]) if m["Subject"] == "Payment receipt"]
        assert len(receipts) == 1 and "$45.00" in site.mail.text(receipts[0])
        page.goto(base + "/portal/billing/history")
        assert "$45.00" in page.locator("#history").inner_text()
        # the invoice of the period, downloaded and read
        with billing_day(first):
            page.goto(base + "/portal/billing/invoices")
        link = page.locator("#invoices a", has_text="PDF").first
        with page.expect_download() as info:
            link.click()
        text = PdfReader(io.BytesIO(Path(info.value.path()).read_bytes())).pages[0].extract_text()
        assert "Invoice" in text and "Program installment" in text and "$45.00" in text
        # a declined card: the payment page says why, nothing is recorded
        add_card(page, base, "4000000000000002")
        page.goto(base + "/portal/billing/pay")
        page.check("#c-other")
        page.fill("#amount", "12.00")
        page.select_option("#method", index=1)
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/portal/billing/payments/*")
        assert page.locator("#payment-status").get_attribute("data-status") == "failed"
        assert "declined" in page.locator("#payment-status").inner_text()
        if js:
            assert serious(page) == []
    finally:
        ctx.close()
