"""The eight safety invariants of HANDSET.md, held over random sequences of world actions (Hypothesis)."""

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from drivers import LEFT, OK, RIGHT
from fsm import authority, codes, records
from fsm.machine import S_RESTART, S_START
from host_sim.flash import FlashImage
from host_sim.handset import SimHandset
from host_sim.world import default_module
from tests import strategies as S

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "200"))


class HandsetMachine(RuleBasedStateMachine):
    """A driver, a vehicle, a technician and the companion doing anything they can to one handset."""

    def storage(self):
        """Log and state store for the handset (in memory here; on simulated littlefs in the subclass)."""
        return None, None

    @initialize(seed=S.seeds, tick_start=S.tick_starts, ambient=S.ambients)
    def start(self, seed, tick_start, ambient):
        log, state = self.storage()
        self.sim = SimHandset(seed=seed, tick_start=tick_start, ambient_dc=ambient, log=log, state=state)
        self.sim.fsm.apply_policy(self.sim.ticks(), {"version": 1, "recall_s": 3600}, records.SRC_TECH)
        self.engine = False
        self.clear_expected = False
        self.last_remote = None
        self.used_codes = []
        self.saved = None
        self.vlock_seen = False

    # ---- the world's actions ----------------------------------------------------------------

    def _act(self, ms=50):
        self.sim.wake()
        self.sim.run(ms)
        self._track()

    def _track(self):
        fsm = self.sim.fsm
        if fsm is None:
            return
        if self.vlock_seen and not fsm.vlock:
            assert self.clear_expected, "a violation lockout ended without an authenticated clear"
        self.vlock_seen = fsm.vlock
        self.clear_expected = False

    @rule(on=st.booleans())
    def key(self, on):
        self.sim.world.key(on)
        if not on:
            self.engine = False
        self._act()

    @rule()
    def crank(self):
        if self.sim.world.crank():
            self.engine = True
        self._act()

    @rule()
    def hotwire(self):
        if self.sim.world.ignition:
            self.sim.world.crank(bypass=True)
            self.engine = True
        self._act()

    @rule()
    def stall(self):
        self.sim.world.stall()
        self.engine = False
        self._act()

    @rule(brac=S.bracs, volume=S.volumes, duration=S.blow_durations, temp=S.breath_temps, hum=st.booleans())
    def blow(self, brac, volume, duration, temp, hum):
        self.sim.world.start_blow(brac, volume, duration, temp, hum)
        self._act(duration + 100)

    @rule(duration=st.integers(100, 2000))
    def inhale(self, duration):
        self.sim.world.start_blow(0, -300 * duration // 1000, duration, 200, False)
        self._act(duration + 100)

    @rule(buttons=st.lists(st.sampled_from([LEFT, OK, RIGHT, LEFT | RIGHT, OK | LEFT]), min_size=1, max_size=12))
    def press(self, buttons):
        for b in buttons:
            self.sim.world.press(b)
            self._act(150)

    @rule(connected=st.booleans())
    def plug(self, connected):
        self.sim.world.connected = connected
        self._act()

    @rule(kind=st.sampled_from(["remove", "insert", "expired", "corrupt"]), serial=st.integers(1, 10**6))
    def module(self, kind, serial):
        w = self.sim.world
        if kind == "remove":
            w.remove_module()
        elif kind == "corrupt":
            w.insert_raw_module(bytes(range(32)))
        else:
            data = default_module(serial, start_wall=w.rtc_now())
            if kind == "expired":
                data.expiry_day = w.rtc_now() // 86400
            w.insert_module(data)
        self._act()

    @precondition(lambda self: self.sim.fsm is not None)
    @rule()
    def power_cut(self):
        fsm = self.sim.fsm
        self.saved = (fsm.vlock, fsm.violations, fsm.code_counter, fsm.lockout_id, fsm.last_command_seq,
                      fsm.temp_until)
        self.sim.power_cut()
        self.engine = self.sim.world.engine

    @precondition(lambda self: self.sim.fsm is None)
    @rule(ms=st.integers(0, 30 * 60_000))
    def power_on(self, ms):
        self.sim.run(ms)
        self.sim.power_on()
        fsm = self.sim.fsm
        vlock, violations, counter, lockout_id, cmd_seq, temp_until = self.saved
        # invariant 6: lockouts, counters, used codes and applied commands survive the cut
        assert fsm.vlock or not vlock
        if vlock:
            assert fsm.lockout_id == lockout_id
        assert fsm.violations >= violations
        assert fsm.code_counter == counter
        assert fsm.last_command_seq == cmd_seq
        assert fsm.temp_until in (temp_until, 0) or fsm.temp_until >= temp_until
        self._act()

    @rule(ms=S.short_waits)
    def wait_short(self, ms):
        self._act(ms)

    @rule(ms=S.medium_waits)
    def wait_medium(self, ms):
        self._act(ms)

    @precondition(lambda self: not self.sim.world.ignition)
    @rule(ms=S.long_waits)
    def wait_long(self, ms):
        self._act(ms)

    @rule(delta=S.rtc_jumps)
    def rtc_jump(self, delta):
        self.sim.world.rtc_offset += delta
        self._act(1100)

    # ---- authenticated and forged messages ------------------------------------------------------

    @precondition(lambda self: self.sim.fsm is not None)
    @rule(valid=st.booleans(), hours_ago=st.integers(0, 10), counter_ahead=st.integers(0, 3))
    def enter_code(self, valid, hours_ago, counter_ahead):
        fsm = self.sim.fsm
        counter = fsm.code_counter + counter_ahead
        hour = fsm.wall // 3600 - hours_ago
        value = codes.code_for(self.sim.unlock_key(), self.sim.device_id, codes.ACTION_CLEAR, counter, hour)
        if not valid:
            value = (value + 1) % 10**8
        if self.used_codes and not valid:
            value = self.used_codes[-1]
        will_work = (valid and hours_ago <= 6 and counter_ahead < 2 and fsm.vlock and fsm.state == 16
                     and fsm.codes_used < fsm.policy.codes_per_period and fsm.wall >= fsm.code_wait_until)
        self.clear_expected = will_work
        for ch in "%08d" % value:
            d = ord(ch) - 48
            for _ in range(d if d <= 6 else 12 - d):
                self.sim.world.press(RIGHT if d <= 6 else LEFT)
                self.sim.wake()
                self.sim.run(150)
            self.sim.world.press(OK)
            self.sim.wake()
            self.sim.run(150)
        if will_work:
            self.used_codes.append(value)
        self._act()

    @precondition(lambda self: self.sim.fsm is not None)
    @rule(right_lockout=st.booleans(), seq_delta=st.integers(-2, 2), replay=st.booleans())
    def remote_clear(self, right_lockout, seq_delta, replay):
        fsm = self.sim.fsm
        if replay and self.last_remote is not None:
            seq, lockout = self.last_remote
            rc = fsm.apply_command(self.sim.ticks(), seq, authority.CMD_CLEAR, lockout)
            assert rc == authority.RC_STALE, "a replayed command was applied again"
            self._act()
            return
        seq = fsm.last_command_seq + seq_delta
        lockout = fsm.lockout_id if right_lockout else fsm.lockout_id + 1
        self.clear_expected = fsm.vlock and right_lockout and seq > fsm.last_command_seq
        rc = fsm.apply_command(self.sim.ticks(), seq, authority.CMD_CLEAR, lockout)
        if seq <= fsm.last_command_seq and rc != authority.RC_APPLIED:
            pass
        if rc == authority.RC_APPLIED:
            self.last_remote = (seq, lockout)
        self._act()

    @precondition(lambda self: self.sim.fsm is not None)
    @rule()
    def technician_clear(self):
        fsm = self.sim.fsm
        self.clear_expected = True
        fsm.technician(self.sim.ticks(), 5, authority.TECH_CLEAR, fsm.status()["lockout_id"])
        self._act()

    @precondition(lambda self: self.sim.fsm is not None)
    @rule(values=st.dictionaries(st.sampled_from(["recall_s", "violations_lock", "camera", "payment_lock",
                                                  "fail_brac", "bogus"]), st.integers(-5, 100000)))
    def push_policy(self, values):
        fsm = self.sim.fsm
        values = dict(values, version=fsm.policy.version + 1)
        fsm.apply_policy(self.sim.ticks(), values, records.SRC_REMOTE)
        self._act()

    # ---- the invariants -----------------------------------------------------------------------

    @invariant()
    def relay_only_in_a_start_or_restart_window(self):
        """1. The relay is closed only in START or RESTART, and never with a gate closed."""
        fsm = self.sim.fsm
        if fsm is None:
            assert not self.sim.world.relay
            return
        if self.sim.world.relay:
            assert fsm.state in (S_START, S_RESTART)
            assert not fsm.vlock and not fsm.state_lock and not fsm.storage_lock
            assert fsm._gate(fsm._connected) == 0
            day = fsm.wall // 86400
            assert fsm._module is not None and day < fsm._module.expiry_day

    @invariant()
    def engine_is_never_stopped_by_the_firmware(self):
        """2. Only the world stops the engine."""
        assert self.sim.world.engine == self.engine

    @invariant()
    def log_is_gapless_and_states_are_recorded(self):
        """5. Sequence numbers are gapless and the last STATE record names the current state."""
        log = self.sim.log
        n = log.next_seq()
        last_state = None
        for seq in range(1, n):
            rec = log.read(seq)
            assert rec is not None and rec[0] == seq
            if rec[2] == records.STATE:
                last_state = rec[3]
        fsm = self.sim.fsm
        if fsm is not None and last_state is not None:
            assert last_state == fsm.state

    @invariant()
    def nothing_raised(self):
        """8. No input in any state raised out of the state machine (the runtime never fell to fail-safe)."""
        if self.sim.runtime is not None:
            assert not self.sim.runtime.failed


class FlashHandsetMachine(HandsetMachine):
    """The same world, with the event log and state on a simulated littlefs chip (issue: flash storage)."""

    def storage(self):
        """FlashLog and FileState on a fresh simulated chip."""
        return FlashImage().storage()


HandsetMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestHandsetInvariants = HandsetMachine.TestCase

FlashHandsetMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestHandsetInvariantsOnFlash = FlashHandsetMachine.TestCase
