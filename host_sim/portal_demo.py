"""`make portal`: the companion with the client portal on http://127.0.0.1:8000/portal/, a demo driver with
two devices (a simulated handset running the real firmware, syncing through the real HTTP modem every few
seconds, and a portable monitor), a staff user, the outbox worker and an SMTP server that keeps the mail.

`--screenshots DIR` instead signs the demo driver in with Chromium (Playwright) and writes the dashboard at
390 px and at desktop width to DIR/portal-dashboard-phone.png and DIR/portal-dashboard-desktop.png.
"""

import argparse
import os
import sys
import tempfile
import threading
import time

import host_sim  # noqa: F401  (firmware on sys.path)

DRIVER = ("driver@interlock.example", "demo-drive-1")
STAFF = ("staff@interlock.example", "staff-pass-1")


class DemoHandset:
    """A simulated handset provisioned by the companion, with its sync client on the real HTTP modem."""

    def __init__(self, url, provisioned):
        from companion.app.core import timebase
        from host_sim.handset import SimHandset
        from host_sim.http_modem import MemoryModem, http_handler

        device = provisioned["device_id"]
        # a while back: the power cuts below move the handset's clock forward to about now
        self.sim = SimHandset(device_id=device, provision=False, start_wall=timebase.device_now() - 3 * 17 * 60)
        self.sim.fsm.provision(self.sim.ticks(), device, bytes.fromhex(provisioned["secret"]))
        self.modem = MemoryModem(http_handler(url))
        self._client = None
        self._for = None

    def client(self):
        """The sync client of the current boot."""
        from sync.client import SyncClient

        if self._for is not self.sim.fsm:
            self._for = self.sim.fsm
            self._client = SyncClient(self.sim.fsm, self.modem, seed=11)
        return self._client

    def violation_lockout(self):
        """Three power cuts longer than the limit."""
        for _ in range(3):
            self.sim.power_cut()
            self.sim.run(17 * 60 * 1000)
            self.sim.power_on()
            self.sim.run(1000)

    def sync(self):
        """One exchange with the companion, and any follow-up it asks for soon."""
        from host_sim.http_modem import sync_now

        for _ in range(10):
            outcome = sync_now(self.client(), self.modem, self.sim.ticks())
            if outcome == 0 and self.client().wait_ms(self.sim.ticks()) > 5000:
                return outcome
            self.sim.run(max(self.client().wait_ms(self.sim.ticks()), 50))
        return outcome


class DemoSite:
    """The companion, its SMTP server and worker, the demo accounts and the syncing handset."""

    def __init__(self, workdir, port, fast_hash=False):
        from companion import testing
        from companion.app.portal.config import PortalSettings
        from companion.mailcatcher import MailCatcher

        self.mail = MailCatcher()
        self.url = "http://127.0.0.1:%d" % port
        extra = dict(ARGON2_TIME_COST=1, ARGON2_MEMORY_KIB=1024, ARGON2_PARALLELISM=1) if fast_hash else {}
        self.ps = PortalSettings(_env_file=None, SMTP_PORT=self.mail.port, BASE_URL=self.url, **extra)
        self.settings = testing.settings_for("sqlite:///" + os.path.join(workdir, "portal.db"),
                                             testing.test_master_keys())
        self.server = testing.ServerThread(self.settings, port=port, portal_settings=self.ps)
        self.stop = threading.Event()
        self.threads = []
        self.handset = None

    def __enter__(self):
        self.mail.__enter__()
        self.server.__enter__()
        self._accounts()
        self._start(self._handset_loop)
        self._start(self._worker_loop)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        self.server.__exit__(*exc)
        self.mail.__exit__(*exc)

    def _start(self, fn):
        t = threading.Thread(target=fn, daemon=True)
        t.start()
        self.threads.append(t)

    def _accounts(self):
        import datetime as dt

        from companion import testing
        from companion.app.accounts import services as accounts
        from companion.app.accounts import staff
        from companion.app.schemas import AccountCreate

        app = self.server.app
        ctx = app.state.portal
        office = testing.Backoffice(self.server.url)
        hs = office.handset(None, serial="DEMO-0001")
        office.call("PATCH", "/handsets/%d/desired" % hs["device_id"],
                    json={"service_due": (dt.date.today() + dt.timedelta(days=24)).isoformat(),
                          "inspection_due": (dt.date.today() + dt.timedelta(days=54)).isoformat()})
        office.close()
        with app.state.db.sessions() as s:
            staff.create_staff_user(s, ctx, STAFF[0], STAFF[1], "Sam Staff")
            terms = AccountCreate(name="Alex Rivera", schedule="monthly", installment_cents=8900,
                                  first_due=dt.date.today() + dt.timedelta(days=6))
            account, inv = staff.open_driver_account(s, ctx, None, terms, DRIVER[0])
            staff.link_device(s, None, account.id, "interlock", hs["device_id"], "Honda Civic")
            staff.link_device(s, None, account.id, "portable-monitor", None, "Portable monitor")
            s.commit()
            token = inv.claim_url.rsplit("/", 1)[1]
            accounts.claim(s, ctx, token, DRIVER[1])
            s.commit()
        self.handset = DemoHandset(self.server.url, hs)
        self.handset.violation_lockout()  # three power cuts: the reset-fee flow is there to try
        self.handset.sync()

    def _handset_loop(self):
        """The handset's own rhythm, in real time: run the firmware, sync every few seconds."""
        while not self.stop.wait(3.0):
            try:
                self.handset.sim.run(3000)
                self.handset.sync()
            except Exception as exc:  # noqa: BLE001 -- the demo goes on; the next sync may work
                print("handset sync failed:", exc, file=sys.stderr)

    def _worker_loop(self):
        from companion.app.notifications import worker

        worker.run(self.server.app.state.db, self.ps, self.stop, self.server.app.state.billing)


def screenshots(site, outdir):
    """Sign the demo driver in and save the dashboard at phone and desktop width."""
    from playwright.sync_api import sync_playwright

    os.makedirs(outdir, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium"),
                                    args=["--no-sandbox"])
        for name, size in (("phone", {"width": 390, "height": 844}), ("desktop", {"width": 1280, "height": 800})):
            ctx = browser.new_context(viewport=size, device_scale_factor=1, locale="en-US")
            page = ctx.new_page()
            page.goto(site.url + "/portal/sign-in")
            page.fill("#identity", DRIVER[0])
            page.fill("#password", DRIVER[1])
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/portal/dashboard")
            path = os.path.join(outdir, "portal-dashboard-%s.png" % name)
            page.screenshot(path=path, full_page=True)
            print("wrote", path)
            ctx.close()
        browser.close()


def main(argv):
    """Serve the demo until Ctrl-C, or take the README screenshots."""
    ap = argparse.ArgumentParser(prog="python -m host_sim.portal_demo")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORTAL_PORT", "8000")))
    ap.add_argument("--screenshots", metavar="DIR")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        port = args.port
        if args.screenshots:
            from companion.testing import free_port

            port = free_port()
        with DemoSite(tmp, port, fast_hash=bool(args.screenshots)) as site:
            if args.screenshots:
                screenshots(site, args.screenshots)
                return 0
            print("Client portal: %s/portal/" % site.url)
            print("  driver: %s  password: %s" % DRIVER)
            print("  staff:  %s  password: %s" % STAFF)
            print("A simulated handset (real firmware) syncs every 3 s; it is in a violation lockout, so the")
            print("reset fee can be paid and the clear watched to 'applied'. Emails go to an SMTP server in this")
            print("process (port %d); the worker sends them. OpenAPI: %s/docs. Ctrl-C stops." % (site.mail.port,
                                                                                           site.url))
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
