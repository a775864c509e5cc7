"""Stateful property test of the service port's access rule: a protected command succeeds exactly while a
session opened by a right answer to a fresh challenge is alive (no logout, idle timeout, token expiry,
disconnect, wrong or replayed login since), and an answer is checked only when the port is not waiting
after failed logins."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from service import auth, smp
from service.server import BACKOFF_MAX_MS, BACKOFF_MS, DISCONNECT_MS
from technician import protocol as p
from tests.service_sim import Bench, rc


def denied(rsp):
    """True for an ACCESSDENIED answer, False for a success (anything else fails the test)."""
    if hasattr(rsp, "rc") or hasattr(rsp, "err"):
        assert rc(rsp) == smp.EACCESSDENIED, rsp
        return True
    return False


class ServiceSession(RuleBasedStateMachine):
    """What a technician (or an intruder) can do at the port, against a model of the session."""

    @initialize()
    def setup(self):
        self.b = Bench(lockout=False)  # the access rule does not depend on the lockout
        self.session = False
        self.expires = 0
        self.last = 0  # sim ms of the last authenticated request
        self.nonce = None
        self.nonce_at = 0
        self.old_answer = None
        self.fails = 0  # consecutive wrong MACs
        self.hold_until = 0  # sim ms until which answers are refused unchecked

    def _ms(self):
        return self.b.sim.world.t

    def _alive(self):
        return (self.session and self._ms() - self.last < auth.IDLE_MS and self.b.h.wall < self.expires)

    @rule()
    def challenge(self):
        self.nonce = self.b.req(p.Challenge()).nonce
        self.nonce_at = self._ms()

    @rule(ttl=st.sampled_from([-10, 5, 600, 3600]), how=st.sampled_from(["right", "other_device", "replay"]))
    def login(self, ttl, how):
        if how == "replay" and self.old_answer is None:
            how = "right"  # nothing to replay yet
        tok = self.b.token(tech_id=9, ttl=ttl, device_id=self.b.h.device_id + (how == "other_device"))
        if how == "replay" and self.old_answer is not None:
            req = self.old_answer
        else:
            req = p.Login(tech_id=9, expires=tok.expires, mac=tok.answer(self.nonce or bytes(16)))
        fresh = self.nonce is not None and self._ms() - self.nonce_at < auth.CHALLENGE_MS
        held = self._ms() < self.hold_until
        right_mac = how == "right" and req is not self.old_answer
        ok = fresh and right_mac and ttl > 0 and not held
        rsp = self.b.req(req)
        self.nonce = None
        self.session = ok
        if ok:
            assert rsp.tech_id == 9
            self.expires, self.last, self.old_answer = tok.expires, self._ms(), req
            self.fails, self.hold_until = 0, 0
        elif held:
            assert rc(rsp) == smp.EBUSY, rsp
        else:
            assert rc(rsp) != 0
            if fresh and not right_mac:
                assert rc(rsp) == p.InterlockErr.BAD_TOKEN
                self.fails += 1
                self.hold_until = self._ms() + min(BACKOFF_MS << (self.fails - 1), BACKOFF_MAX_MS)

    @rule(cmd=st.sampled_from(["status", "clock", "policy"]))
    def protected(self, cmd):
        alive = self._alive()
        request = {"status": p.Status(), "clock": p.ClockRead(), "policy": p.PolicyRead()}[cmd]
        rsp = self.b.req(request)
        assert denied(rsp) != alive, (alive, rsp)
        if alive:
            self.last = self._ms()
        else:
            self.session = False

    @rule(ms=st.sampled_from([1000, 29_000, 31_000, auth.IDLE_MS // 2, auth.IDLE_MS]))
    def wait(self, ms):
        self.b.run(ms)

    @rule(ms=st.sampled_from([100, DISCONNECT_MS - 100, DISCONNECT_MS + 100]))
    def unplug(self, ms):
        b = self.b
        b.svc.link(b.now, False)
        b.run(ms)
        b.svc.link(b.now, False)
        b.svc.link(b.now, True)
        if ms >= DISCONNECT_MS:
            self.session = False
            self.nonce = None

    @precondition(lambda self: self.session)
    @rule()
    def logout(self):
        alive = self._alive()
        rsp = self.b.req(p.Logout())
        assert denied(rsp) != alive
        self.session = False
        if alive:
            self.nonce = None  # a logout leaves nothing behind, an open challenge neither

    @invariant()
    def no_faults(self):
        assert self.b.svc.faults == 0


ServiceSession.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
test_service_session = ServiceSession.TestCase
