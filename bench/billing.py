"""Billing benchmarks:

- auto-pay: accounts charged per second by one worker and by two (separate processes) on PostgreSQL, the
  sandbox gateway in process, over N due accounts (default 100,000), each a weekly installment due today;
  target: a day's collections for a million-handset fleet in under an hour. A weekly schedule collects about
  1/7 of the fleet a day (143,000 charges), a monthly one about 1/30; the bench states the hours for a whole
  million too, the worst case.
- invoice PDFs per second (fpdf2), and the time of a 12-month invoice (a weekly payer: 52 installments and
  52 payments, 104 lines), target under 50 ms.

    .venv/bin/python -m bench.billing [--accounts 100000] [--skip-autopay]

Results go to bench/results/billing.txt.
"""

import argparse
import datetime as dt
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from companion import testing  # noqa: E402

DAY = dt.date(2027, 6, 7)
RUNS = 200  # invoice PDFs timed


def _context(settings):
    from companion.app.billing import context as billing_context
    from companion.app.core.keyring import Keyring
    from companion.app.portal.config import PortalSettings
    from companion.app.portal.context import PortalContext

    ps = PortalSettings(_env_file=None, BASE_URL="http://127.0.0.1:9")
    ctx = PortalContext.build(settings, ps, Keyring(settings))
    return billing_context.build(settings, ctx, billing_context.BillingSettings(_env_file=None, WEBHOOK_URL=""))


def _seed(settings, n):
    """n accounts of one handset each with auto-pay on a Visa card, a 50.00 weekly installment due on DAY."""
    from sqlalchemy import insert, select

    from companion.app.billing.models import BillingPlan, DeviceAutopay, PaymentMethod
    from companion.app.core.db import Database
    from companion.app.models import Account, Handset, utcnow

    b = _context(settings)
    token = b.gateway.tokenize("4242424242424242", "12", "2031", "123").token
    b.gateway.close()  # type: ignore[attr-defined]
    db = Database(settings)
    now = utcnow()
    with db.engine.begin() as c:
        for start in range(0, n, 5000):
            size = min(5000, n - start)
            c.execute(insert(Account), [dict(name="B", schedule="weekly", first_due=DAY, installment_cents=5000,
                                             periods_paid=0, credit_cents=0, reset_fee_cents=7500, allow_codes=True,
                                             codes_per_period=2, service_period_days=30, period_base=0,
                                             next_due=DAY, created_at=now) for _ in range(size)])
        ids = list(c.execute(select(Account.id).order_by(Account.id)).scalars())
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            c.execute(insert(PaymentMethod), [dict(account_id=i, gateway="sandbox", token=token, brand="visa",
                                                   last4="4242", exp_month=12, exp_year=2031, primary=True,
                                                   deleted=False, created_at=now) for i in chunk])
        methods = {a: m for a, m in c.execute(select(PaymentMethod.account_id, PaymentMethod.id)).all()}
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            c.execute(insert(BillingPlan), [dict(account_id=i, autopay=False, method_id=None, remind_days=3,
                                                 reminders=True, retry_attempts=0, last_decline="", updated_at=now)
                                            for i in chunk])
            c.execute(insert(Handset), [dict(serial="B-%d" % i, account_id=i, key_id="k", secret_nonce=b"",
                                             secret_ct=b"", desired_version=1, payment_due_day=0, service_due_day=0,
                                             inspection_due_day=0, expected_module=0, policy={}, preset="",
                                             command_seq=0, code_counter=0, reported_version=0, last_command_seq=0,
                                             lockout_id=0, log_seq=0, log_hash="", log_error="", syncs=0,
                                             created_at=now) for i in chunk])
        handsets = {a: h for a, h in c.execute(select(Handset.account_id, Handset.id)).all()}
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            c.execute(insert(DeviceAutopay), [dict(handset_id=handsets[i], account_id=i, autopay=True,
                                                   method_id=methods[i], retry_attempts=0, last_decline="",
                                                   updated_at=now) for i in chunk])
    db.close()


def _work(url, keys, ready, go, out):
    from sqlalchemy import text

    from companion.app.billing import ledger, worker
    from companion.app.core.db import Database

    settings = testing.settings_for(url, keys)
    b = _context(settings)
    db = Database(settings)
    ledger.set_clock(lambda: dt.datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=dt.UTC))
    with db.sessions() as s:  # connections open before the clock starts
        s.execute(text("SELECT 1"))
    ready.put(os.getpid())
    go.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    counts = worker.autopay_round(db, b)
    counts["seconds"] = round(time.perf_counter() - t0, 1)
    counts["cpu_seconds"] = round(time.process_time() - c0, 1)  # this process's (the sandbox runs in it)
    out.put(counts)
    db.close()


def autopay(n, workers):
    """(charged, seconds, charges at the gateway) for n due accounts and `workers` processes."""
    from sqlalchemy import func, select

    from companion.app.billing.sandbox import SandboxIntent
    from companion.app.core import migrate
    from companion.app.core.db import Database
    from companion.app.models import LedgerEntry

    with testing.fresh_pg_database("bench_billing") as url:
        keys = testing.test_master_keys()
        settings = testing.settings_for(url, keys)
        migrate.upgrade(settings)
        _seed(settings, n)
        ctx = multiprocessing.get_context("spawn")
        out, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        # every worker walks every due device: each claims its own batches (FOR UPDATE SKIP LOCKED, a lease);
        # the clock starts when all of them have imported the companion and connected
        procs = [ctx.Process(target=_work, args=(url, keys, ready, go, out)) for i in range(workers)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        t0 = time.perf_counter()
        go.set()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        seconds = time.perf_counter() - t0
        db = Database(settings)
        with db.sessions() as s:
            paid = s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.side == "payment"))
        b = _context(settings)
        with b.gateway.sessions() as s:  # type: ignore[attr-defined]
            intents = s.scalar(select(func.count()).select_from(SandboxIntent))
        b.gateway.close()  # type: ignore[attr-defined]
        db.close()
        return int(paid or 0), seconds, int(intents or 0), results


def invoices():
    """(PDFs per second, ms for one 12-month invoice: build the lines and write the PDF)."""
    from companion.app.accounts.models import User
    from companion.app.billing import invoices as inv
    from companion.app.billing.models import Invoice
    from companion.app.models import Account, LedgerEntry

    account = Account(id=1, name="Dana Driver", schedule="weekly", first_due=dt.date(2026, 1, 5),
                      installment_cents=2077, reset_fee_cents=7500)
    user = User(id=1, name="Dana Driver", email="d@example.org")
    rows = []
    when = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)
    for n in range(52):
        due = dt.date(2026, 1, 5) + dt.timedelta(days=7 * n)
        rows.append(LedgerEntry(id=2 * n + 1, side="charge", kind="installment", method="", amount_cents=2077,
                                due_date=due, note="weekly installment", created_at=when))
        rows.append(LedgerEntry(id=2 * n + 2, side="payment", kind="installment", method="card",
                                amount_cents=2077, note="automatic payment",
                                created_at=dt.datetime(due.year, due.month, due.day, 12, tzinfo=dt.UTC)))

    def one():
        lines, charges, payments = inv.lines_for(rows, dt.date(2026, 1, 1), dt.date(2027, 1, 1))
        invoice = Invoice(number=123456, account_id=1, period_start=dt.date(2026, 1, 1),
                          period_end=dt.date(2027, 1, 1), lines=lines, charges_cents=charges,
                          payments_cents=payments, balance_cents=charges - payments, created_at=when)
        return inv.invoice_pdf(invoice, account, user)

    one()
    times, cpu = [], []
    for _ in range(RUNS):
        t0, c0 = time.perf_counter(), time.thread_time()
        pdf = one()
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    times.sort()
    cpu.sort()
    assert pdf.startswith(b"%PDF")

    def p(xs, q):
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    return (1 / (sum(times) / len(times)), p(times, 0.5), p(times, 0.99), times[-1] * 1000, p(cpu, 0.5),
            p(cpu, 0.99))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--skip-autopay", action="store_true")
    args = ap.parse_args()
    out = ["# bench/billing.py on %s (load average %s, %d cores)" % (
        dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), " ".join("%.1f" % x for x in os.getloadavg()),
        os.cpu_count() or 0)]
    rate, median_ms, p99_ms, worst_ms, cpu_median, cpu_p99 = invoices()
    out.append("invoice PDF (12 months, 104 lines, fpdf2): %.0f PDFs/s on one core; of %d, wall median %.1f ms, "
               "p99 %.1f ms, worst %.1f ms; CPU median %.1f ms, p99 %.1f ms (target < 50 ms; wall beyond CPU is "
               "time the shared machine gave other processes)"
               % (rate, RUNS, median_ms, p99_ms, worst_ms, cpu_median, cpu_p99))
    print(out[-1], flush=True)
    if not args.skip_autopay:
        reason = testing.pg_unavailable_reason()
        if reason:
            out.append("auto-pay: skipped (%s)" % reason)
        else:
            for workers in (1, 2):
                paid, seconds, intents, results = autopay(args.accounts, workers)
                rate = paid / seconds
                out.append("auto-pay, %d worker%s, PostgreSQL, sandbox gateway in process: %d of %d due accounts "
                           "charged in %.1f s = %.0f accounts/s (%d charges at the gateway: none twice); a day "
                           "of a weekly million-handset fleet (143,000) %.2f h, every handset in one day %.2f h; "
                           "per worker: %s; load average after: %s"
                           % (workers, "" if workers == 1 else "s", paid, args.accounts, seconds, rate, intents,
                              143_000 / rate / 3600, 1_000_000 / rate / 3600, results,
                              " ".join("%.1f" % x for x in os.getloadavg())))
                print(out[-1], flush=True)
                assert paid == args.accounts and intents == args.accounts, (paid, intents, results)
    path = ROOT / "bench" / "results" / "billing.txt"
    path.write_text("\n".join(out) + "\n")
    print("written to", path)


if __name__ == "__main__":
    main()
