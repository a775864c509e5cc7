"""What the service port relies on survives a reset or a power cut: the token clock a technician set back, the
failed-login waits, and the identity (a corrupt state still lets a technician in). And the cable's login is
never held up by a network peer's failures."""

from fsm import records
from service import smp
from service.server import BACKOFF_MAX_MS, BACKOFF_MS, LEVELS, LINE, Service
from technician import protocol as p
from tests.service_sim import Bench, Counter, rc

UDP = ("10.0.0.9", 40001)


class CountingState:
    """The sim's state store, counting saves."""

    def __init__(self, inner):
        self.inner = inner
        self.saves = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def save(self, data):
        self.saves += 1
        self.inner.save(data)


def ask(b, request, peer=LINE):
    raw = b.svc.handle(b.now, request.BYTES, peer)
    assert raw is not None
    for cls in (request._Response, request._ErrorV1, request._ErrorV2):
        try:
            return cls.loads(raw)
        except Exception:  # noqa: BLE001,S112 -- try the next shape
            continue
    raise AssertionError(raw)


def bad_login(b, peer=LINE):
    ask(b, p.Challenge(), peer)  # the challenge the wrong answer uses up
    return ask(b, p.Login(tech_id=9, expires=b.h.wall + 600, mac=bytes(32)), peer)


def reboot(b, damage=None):
    """Cut the power, let a second pass, damage the flash if asked, power on, and start the port's server."""
    b.sim.power_cut()
    b.sim.run(1000)
    if damage is not None:
        damage(b.sim.state)
    b.sim.power_on()
    b.sim.run(100)
    b.svc = Service(b.sim.fsm, b.log, Counter())
    b.svc.poll(b.now)


def test_a_reset_does_not_give_a_token_the_time_a_clock_set_back_took():
    """A technician sets the clock back a day, logs out and resets the handset: the token still expires when its
    lifetime is over (before, the token clock's high-water mark was in RAM and the reset gave the day back)."""
    b = Bench(lockout=False)
    tok = b.token(ttl=600)
    assert b.login(tok).tech_id == 17
    assert b.req(p.ClockWrite(wall=b.h.wall - 86400)).wall
    b.req(p.Logout())
    reboot(b)
    assert b.h.wall < tok.expires - 86400 + 600  # the clock alone would accept the token for another day
    b.run(700_000)
    assert rc(b.login(tok)) == p.InterlockErr.EXPIRED
    # and the lead was written with the clock set, not as time runs: an hour of polls saves nothing for it
    b.sim.state = counting = CountingState(b.sim.state)
    b.sim.fsm.store = counting
    b.run(BACKOFF_MAX_MS)
    mark = b.h.token_wall(b.now)
    b.run(3_600_000)
    assert counting.saves == 0 and b.h.token_wall(b.now) >= mark + 3600


def test_a_companion_time_after_a_reset_still_ends_the_lead():
    """The companion's signed time is taken as it is, after a reset as before: the saved lead ends with it."""
    b = Bench(lockout=False)
    b.login()
    real = b.h.wall
    b.req(p.ClockWrite(wall=real - 86400))
    reboot(b)
    assert b.h.token_lead == 86400
    b.h.set_time(b.now, real + 5, records.SRC_REMOTE)
    assert b.h.token_lead == 0 and b.svc.token_wall(b.now) == real + 5
    reboot(b)
    assert b.h.token_lead == 0


def test_the_login_wait_survives_a_power_cycle_without_a_write_per_attempt():
    """Failed logins on the cable raise its wait; cutting the power does not end it (before, the wait lived in
    RAM). The level is written when it changes: a long run of failures writes LEVELS times, not once each."""
    idle = Bench(lockout=False)  # the same handset left alone as long: the saves it makes anyway
    idle.sim.state = idle.sim.fsm.store = baseline = CountingState(idle.sim.state)
    b = Bench(lockout=False)
    b.sim.state = b.sim.fsm.store = counting = CountingState(b.sim.state)
    for _ in range(LEVELS + 20):
        assert rc(bad_login(b)) == p.InterlockErr.BAD_TOKEN
        b.run(BACKOFF_MAX_MS)
        idle.run(BACKOFF_MAX_MS)
    assert counting.saves - baseline.saves == LEVELS
    assert b.h.login_wait_line == LEVELS and b.h.login_wait_net == 0
    assert rc(bad_login(b)) == p.InterlockErr.BAD_TOKEN
    reboot(b)
    assert b.svc.login_held(b.now)
    assert rc(b.login()) == smp.EBUSY  # checked only once the wait is over, power cut or not
    b.run(BACKOFF_MAX_MS)
    assert b.login().tech_id == 17
    assert b.h.login_wait_line == 0  # a right answer ends the wait, and that is saved too
    reboot(b)
    assert not b.svc.login_held(b.now)


def test_a_network_flood_of_bad_logins_does_not_hold_the_cable():
    """A UDP (or BLE) peer sending wrong answers as fast as it can is paced, and so are the other network
    peers; the technician at the serial cable logs in at once (before, one wait held the whole port)."""
    b = Bench()
    for i in range(50):
        peer = ("10.0.%d.%d" % (i // 200, i % 200 + 1), 5000)  # a new address each time
        got = bad_login(b, peer)
        assert rc(got) in (p.InterlockErr.BAD_TOKEN, smp.EBUSY)
        b.run(200)
    assert b.svc.login_held(b.now, UDP)  # another network peer waits too: addresses cost nothing
    assert not b.svc.login_held(b.now, LINE)
    assert b.login().tech_id == 17
    assert ask(b, p.Status()).status["lockout"] is True
    # the cable's own failures still pace the cable
    b.req(p.Logout())
    assert rc(bad_login(b)) == p.InterlockErr.BAD_TOKEN
    assert rc(b.login()) == smp.EBUSY
    b.run(BACKOFF_MS)
    assert b.login().tech_id == 17


def test_a_corrupt_state_can_still_be_serviced():
    """The saved state is unreadable: the handset boots locked for service, keeps its identity (its own store),
    and a technician logs in with a token for it and clears the lock (before, the key was lost with the state
    and nobody could log in)."""
    b = Bench()
    device_id = b.h.device_id

    def corrupt(state):
        state._data = b"\xff" * 100

    reboot(b, corrupt)
    assert b.h.state_lock and b.h.device_id == device_id and b.h.keys() is not None
    assert b.login().tech_id == 17
    status = ask(b, p.Status()).status
    assert status["device_id"] == device_id and status["provisioned"] is True
    assert ask(b, p.Clear(lockout_id=status["lockout_id"])) is not None
    assert not b.h.state_lock and not b.h.vlock


def test_a_wait_that_is_over_does_not_come_back_when_the_ticks_wrap():
    """The tick counter wraps every 12.4 days: a wait that ended must not look fresh again 6.2 days after the
    failure (before, a technician arriving a week after a wrong answer found the port held for days)."""
    from interlock import timebase

    b = Bench(lockout=False)
    assert rc(bad_login(b)) == p.InterlockErr.BAD_TOKEN
    t = b.now
    for _ in range(7 * 24 * 60):  # the service task polls on every turn: here once a minute for a week
        t = timebase.add(t, 60_000)
        b.svc.poll(t)
        assert not b.svc.login_held(t)
