"""`make demo`, companion part: a real companion on loopback and a simulated handset; a violation lockout
reaches the companion, the reset fee is paid through the API, and the remote clear reaches the handset."""

import tempfile

from fsm import records
from host_sim.handset import SimHandset
from host_sim.http_modem import MemoryModem, http_handler, sync_now


def _screen(sim):
    first, second = sim.fsm.status()["display"]
    return f"[{first:<16}|{second:<16}]"


class _Demo:
    """The narration: one line per step, the handset's screen where it matters."""

    def __init__(self, out):
        self.out = out

    def say(self, text):
        self.out.write("== " + text + "\n")

    def show(self, text):
        self.out.write("   " + text + "\n")


def run(out):
    """Run the remote-clear demo, writing to out; returns 0 when every step happened as it should."""
    from companion import testing
    from companion.app.core import timebase
    from sync.client import OK, SyncClient

    d = _Demo(out)
    with tempfile.TemporaryDirectory() as tmp:
        settings = testing.settings_for("sqlite:///" + tmp + "/companion.db", testing.test_master_keys())
        with testing.ServerThread(settings) as srv:
            office = testing.Backoffice(srv.url)
            d.say("companion running at " + srv.url + " (SQLite, WAL); OpenAPI docs at " + srv.url + "/docs")
            acc = office.account(schedule="monthly", first_due="2026-12-01")
            hs = office.handset(acc["id"], serial="DEMO-0001")
            device = hs["device_id"]
            d.say(f"back office: account {acc['id']} (monthly, next due {acc['next_due']}), handset {device} "
                  "provisioned with a fresh secret")
            # a few hours back: the three power cuts below move the handset's clock forward
            sim = SimHandset(device_id=device, provision=False, start_wall=timebase.device_now() - 3 * 17 * 60)
            sim.fsm.provision(sim.ticks(), device, bytes.fromhex(hs["secret"]))
            modem = MemoryModem(http_handler(srv.url))
            d.say("handset: three power cuts of 17 minutes (each a violation) -> violation lockout")
            for _ in range(3):
                sim.power_cut()
                sim.run(17 * 60 * 1000)
                sim.power_on()
                sim.run(1000)
            sim.world.key(True)
            sim.wake()
            sim.run(3000)
            d.show("key on: " + _screen(sim) + "  lockout id " + str(sim.fsm.lockout_id))
            sim.world.key(False)
            sim.wake()
            sim.run(6000)

            client = SyncClient(sim.fsm, modem, seed=7)  # this boot's sync client, as the runtime makes it

            def sync_all(label):
                n = 0
                while True:
                    outcome = sync_now(client, modem, sim.ticks())
                    n += 1
                    if (outcome == OK and client.wait_ms(sim.ticks()) > 5000) or n > 20:
                        break
                    sim.run(max(client.wait_ms(sim.ticks()), 50))
                d.show(f"{label}: {n} exchange(s), log acknowledged through seq {sim.fsm.log.acked()}")
                return outcome

            sync_all("sync (key off)")
            view = office.handset_view(device)
            d.show(f"companion sees: lockout id {view['lockout_id']}, state {view['reported']['state']}")
            pay = office.pay(acc["id"], "reset_fee", 7500, device_id=device, reference="demo-fee")
            cmd = pay["command"]
            d.say(f"back office: reset fee paid -> remote clear #{cmd['id']} (seq {cmd['seq']}) for lockout "
                  f"{cmd['arg']}: {cmd['status']}")
            sim.run(60 * 1000)
            client.key_off(sim.ticks())
            outcome = sync_now(client, modem, sim.ticks())
            status = office.call("GET", "/commands/" + str(cmd["id"]))["status"]
            d.say(f"handset syncs: clear {status}; handset lockout now {sim.fsm.vlock}")
            sync_all("follow-up sync")
            status = office.call("GET", "/commands/" + str(cmd["id"]))["status"]
            d.show("portal: clear " + status)
            sim.world.key(True)
            sim.wake()
            sim.run(3000)
            d.show("key on: " + _screen(sim) + "  (a breath test is still required)")
            clears = [r for r in office.call("GET", "/handsets/" + str(device) + "/log", params={"limit": 1000})
                      if r["rtype"] == records.CLEAR]
            d.show(f"uploaded log: CLEAR record source {clears[-1]['b']} (remote), lockout {clears[-1]['c']}"
                   if clears else "uploaded log: no CLEAR record yet")
            office.close()
            ok = outcome == OK and status == "applied" and not sim.fsm.vlock
            d.say("remote clear " + ("applied" if ok else "NOT applied"))
            return 0 if ok else 1


if __name__ == "__main__":
    import sys

    import host_sim  # noqa: F401

    sys.exit(run(sys.stdout))
