"""The handset's sync client with the real state machine against a real companion: scheduling, backoff with
jitter, offline operation, clock correction, and refusal of answers that fail authentication."""

import asyncio
import uuid

import pytest

from companion.app.core import timebase as ctb
from fsm import authority, records
from host_sim.http_modem import DROP_REQUEST, ModemError
from interlock import wire
from sync import client as sc
from tests.companion_doubles import SyncedSim

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)



@pytest.fixture
def synced(office):
    """A simulated handset provisioned by the companion, on an account."""
    acc = office.account()
    hs = office.handset(acc["id"])
    s = SyncedSim(office, hs)
    s.account = acc
    return s


def test_first_sync_uploads_log_and_takes_desired_state(synced, office):
    """The first sync uploads the log, applies the payment due date and schedules the next periodic sync."""
    outcomes = synced.settle()
    assert outcomes[-1] == sc.OK
    fsm = synced.fsm
    assert fsm.payment_due == ctb.day_of(__import__("datetime").date(2026, 12, 1))
    view = office.handset_view(synced.device_id)
    assert view["reported"]["payment_due"] == fsm.payment_due
    assert view["log_seq"] == synced.sim.log.acked() >= 3
    assert synced.client.wait_ms(synced.sim.ticks()) > sc.PERIOD_MS - 2000
    assert synced.records(records.SYNC)[-1][3] == authority.SYNC_OK


def test_offline_backs_off_with_jitter_forever_without_logging(synced):
    """With no network the delay doubles up to the cap with jitter from the seeded PRNG; nothing is logged."""
    synced.modem.online = False
    c = synced.client
    before = synced.fsm.log.next_seq()
    delays = []
    now = synced.sim.ticks()
    for _ in range(60):
        assert c.due(now)
        req = c.build(now)
        with pytest.raises(ModemError):
            synced.modem.exchange(*req)
        assert c.failed(now) == sc.FAILED
        d = c.wait_ms(now)
        delays.append(d)
        now = (now + d) & (2**30 - 1)
    for k, d in enumerate(delays):
        full = min(c.retry_min_ms << min(k, 16), c.retry_max_ms)
        assert full // 2 <= d <= full
    assert len(set(delays[20:])) > 5  # jitter: not all the same at the cap
    assert synced.fsm.log.next_seq() == before
    synced.modem.online = True
    synced.sim.run(10)
    assert synced.settle()[-1] == sc.OK and c.failures == 0


def test_backoff_is_deterministic_per_seed(office):
    """Two clients with the same seed back off identically; another seed differs."""
    hs = office.handset()

    def delays(seed):
        s = SyncedSim(office, hs, seed=seed)
        s.modem.online = False
        out = []
        for _ in range(8):
            s.sync()
            out.append(s.client.wait_ms(s.sim.ticks()))
        return out

    assert delays(5) == delays(5) != delays(6)


def test_key_off_triggers_a_sync(synced):
    """After a periodic sync, turning the key on and off makes the next sync due at once."""
    synced.settle()
    c = synced.client
    assert not c.due(synced.sim.ticks())
    synced.sim.world.key(True)
    synced.sim.wake()
    synced.sim.run(3000)
    c.watch(synced.sim.ticks())
    assert synced.fsm.state != 1, synced.fsm.status()
    assert not c.due(synced.sim.ticks())
    synced.sim.world.key(False)
    synced.sim.wake()
    synced.sim.run(3000)
    c.watch(synced.sim.ticks())
    assert c.due(synced.sim.ticks())


def test_clock_skew_is_corrected_from_the_signed_time(office):
    """A handset two hours fast is told the server time, retries, and sets its clock from the signed answer."""
    hs = office.handset()
    s = SyncedSim(office, hs, start_wall=ctb.device_now() + 7200)
    assert s.sync() == sc.SKEW
    assert s.sync() == sc.OK
    assert abs(s.fsm.wall - ctb.device_now()) <= 5
    clock = s.records(records.CLOCK)
    assert clock and clock[-1][3] == 1 and clock[-1][5] == records.SRC_REMOTE


def test_tampered_answer_is_refused_and_logged(synced, office):
    """An answer altered on the way (here: the payment date) fails the signature: refused, logged, unused."""
    def tamper(status, headers, body):
        return status, headers, body.replace(b'"payment_due_day":', b'"payment_due_day":1')

    synced.modem.tamper = tamper
    assert synced.sync() == sc.REFUSED
    assert synced.fsm.payment_due == 0
    last = synced.records(records.SYNC)[-1]
    assert last[3:6] == (authority.SYNC_REFUSED, 0, wire.WHY_SIGNATURE)
    synced.modem.tamper = None
    synced.sim.run(synced.client.wait_ms(synced.sim.ticks()) + 10)
    assert synced.settle()[-1] == sc.OK and synced.fsm.payment_due > 0


def test_old_answer_replayed_to_a_new_request_is_refused(synced):
    """A recorded answer replayed to a later request does not verify (it is bound to the old nonce)."""
    synced.settle()
    old = synced.modem.exchanges[-1]
    synced.modem.handler = lambda m, p, h, b: (old[4], old[5], old[6])
    synced.client.key_off(synced.sim.ticks())
    assert synced.sync() == sc.REFUSED
    assert synced.records(records.SYNC)[-1][5] == wire.WHY_SIGNATURE


def test_unprovisioned_handset_never_syncs(office):
    """Without a secret the client never starts an exchange."""
    from host_sim.handset import SimHandset
    from host_sim.http_modem import MemoryModem

    sim = SimHandset(device_id=77, provision=False)
    c = sc.SyncClient(sim.fsm, MemoryModem(lambda *a: (500, {}, b"")))
    assert not c.due(sim.ticks()) and c.build(sim.ticks()) is None


def test_run_task_syncs_and_survives_transport_errors(synced):
    """The asyncio task syncs, treats transport exceptions as offline, and keeps running."""
    synced.modem.faults = [DROP_REQUEST]
    c = synced.client
    c.retry_min_ms = 50

    async def main():
        task = asyncio.ensure_future(c.run(ticks_ms=synced.sim.ticks, max_wait_ms=20))
        for _ in range(200):
            await asyncio.sleep(0.02)
            synced.sim.run(100)
            if c.syncs >= 1:
                break
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    assert c.syncs >= 1 and len(synced.modem.exchanges) >= 1


def test_http_modem_reports_unreachable_companion():
    """The real HTTP transport raises ModemError when nothing listens."""
    from companion.testing import free_port
    from host_sim.http_modem import HttpModem

    m = HttpModem("http://127.0.0.1:" + str(free_port()), timeout_s=2)
    with pytest.raises(ModemError):
        asyncio.run(m.request("POST", "/api/v1/sync", {}, b"{}"))
    with pytest.raises(ModemError):
        m.request_blocking("POST", "/api/v1/sync", {}, b"{}")


def test_http_modem_talks_to_the_companion(server):
    """The real HTTP transport carries a request and brings back status, lowercase headers and body."""
    from host_sim.http_modem import HttpModem

    m = HttpModem(server.url)
    status, headers, body = asyncio.run(m.request("POST", "/api/v1/sync", {"x-nonce": uuid.uuid4().hex}, b"{}"))
    assert status == 401 and headers["content-type"].startswith("application/problem+json") and b"x-device-id" in body


def test_a_corrupt_state_still_syncs(synced):
    """The saved state is unreadable after a power cut: the handset boots locked for service and still syncs,
    signed with the key from its own identity store (before, the key was lost with the state)."""
    assert synced.settle()[-1] == sc.OK
    synced.sim.power_cut()
    synced.sim.run(1000)
    synced.sim.state._data = b"\xff" * 64
    synced.sim.power_on()
    assert synced.fsm.state_lock and synced.fsm.device_id == synced.device_id
    assert synced.settle()[-1] == sc.OK
    assert synced.records(records.SYNC)[-1][3] == authority.SYNC_OK
