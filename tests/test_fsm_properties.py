"""The safety invariants of HANDSET.md, held over random sequences of world actions (Hypothesis).

Besides the world's single actions (a key, a blow, a cut, a wait) the machine has composite rules that a
driver would do in one go ("pass a test and start", "drive until a retest", "take the retest", "break the
rules until locked out", "open the code entry and type a code"), so that most examples reach the states
that matter. `test_the_examples_reach_what_matters` measures how many do and prints the figures.
"""

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from board import LEFT, OK, RIGHT
from fsm import authority, breath, records
from fsm.machine import S_CODE, S_DRIVING, S_OFF, S_RESTART, S_RETEST, S_START, S_TEST, S_VIOLATION, Interlock
from host_sim.flash import FlashImage
from host_sim.handset import SimHandset
from host_sim.world import default_module
from interlock import codes
from tests import strategies as S

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "200"))
SOBER = 0
# what an example should reach, each found from the log at the end of the example
REACH = ("completed a breath test", "closed the relay", "started the engine", "reached a retest",
         "submitted a code", "cleared a lockout")
_reach = None  # a Counter while test_the_examples_reach_what_matters runs


def reached(log):
    """The REACH items the records of a log show."""
    out = set()
    for seq in range(log.first_seq(), log.next_seq()):
        rec = log.read(seq)
        if rec is None:
            continue
        rtype, a, b = rec[2], rec[3], rec[4]
        if rtype == records.RESULT:
            out.add(REACH[0])
        elif rtype == records.STATE and a in (S_START, S_RESTART):
            out.add(REACH[1])
        elif rtype == records.STATE and a == S_DRIVING and b in (S_START, S_RESTART):
            out.add(REACH[2])
        elif rtype == records.RETEST and b == 1:
            out.add(REACH[3])
        elif rtype == records.CODE:
            out.add(REACH[4])
        elif rtype == records.CLEAR and a == records.LOCK_VIOLATION:
            out.add(REACH[5])
    return out


class HandsetMachine(RuleBasedStateMachine):
    """A driver, a vehicle, a technician and the companion doing anything they can to one handset."""

    def storage(self):
        """Log and state store for the handset (in memory here; on simulated littlefs in the subclass)."""
        return None, None

    @initialize(seed=S.seeds, tick_start=S.tick_starts, ambient=S.ambients, plan=S.openings, brac=S.test_bracs,
                retest_brac=S.test_bracs, delay=st.integers(0, 7 * 60_000), clear=S.clears, preset=S.jurisdictions)
    def start(self, seed, tick_start, ambient, plan, brac, retest_brac, delay, clear, preset):
        """A handset under the factory policy or a state's preset, and how the example opens: a drive with its
        retest, a lockout and a clear, both, or nothing (the random actions that follow do the rest)."""
        log, state = self.storage()
        self.sim = SimHandset(seed=seed, tick_start=tick_start, ambient_dc=ambient, log=log, state=state)
        if preset is not None:
            assert self.sim.fsm.apply_policy(self.sim.ticks(), dict(preset.policy(), version=1), records.SRC_REMOTE)
        self.sim.fsm.apply_policy(self.sim.ticks(), {"recall_s": 3600}, records.SRC_TECH)
        self.engine = False
        self.clear_expected = False
        self.last_remote = None
        self.used_codes = []
        self.saved = None
        self.vlock_seen = False
        # the model the records are checked against
        self.seen = 1  # next log seq to check
        self.violations = 0  # violations this service period
        self.retest_asked = None  # device time of the first retest request since its last outcome
        self.last_abort = None  # device time of the last abort of the test under way
        self.cut = None  # (world time of the cut, engine running at the cut)
        self.rtc_moved = False
        self._track()
        if "drive" in plan:
            self.pass_and_start(brac)
            if self.sim.fsm.state == S_DRIVING:
                self.drive_until_retest()
            if self.sim.fsm.state == S_RETEST:
                self.take_retest(retest_brac, delay)
            self.sim.world.key(False)
            self.engine = False
            self._act(130_000)  # past the free restart
        if "lock out" in plan:
            self.violation_spree()
            self.sim.world.key(True)
            self._act()
            if clear == "code" or clear == "wrong code":
                self.enter_code(clear == "code", 0, 0)
            elif clear == "remote":
                self.remote_clear(True, 1, False)
            else:
                self.technician("clear")

    def teardown(self):
        if _reach is not None and hasattr(self, "sim"):
            _reach["examples"] += 1
            for item in reached(self.sim.log):
                _reach[item] += 1

    # ---- the model ------------------------------------------------------------------------------

    def _act(self, ms=50):
        self.sim.wake()
        self.sim.run(ms)
        self._track()

    def _track(self):
        """Check the records logged since the last call, and the lockout's end, against the model."""
        fsm = self.sim.fsm
        log = self.sim.log
        locked = self.vlock_seen
        end = log.next_seq()
        while self.seen < end:
            rec = log.read(self.seen)
            self.seen += 1
            if rec is None:
                continue
            _seq, wall, rtype, a, b, _c, _p = rec
            if rtype == records.VIOLATION:
                expect = self.violations + 1 if self.violations < 255 else 255
                assert b == expect, "violation %d of the period booked as %d" % (expect, b)
                self.violations = b
                if fsm is not None and b >= fsm.policy.violations_lock and not locked:
                    assert any(r is not None and r[2] == records.LOCKOUT and r[3] == records.LOCK_VIOLATION
                               for r in (log.read(s) for s in range(self.seen, end))), \
                        "violation %d of the period did not lock out" % b
            elif rtype == records.SERVICE and a == records.SVC_RECORD:
                self.violations = 0
            elif rtype == records.LOCKOUT and a == records.LOCK_VIOLATION:
                locked = True
            elif rtype == records.CLEAR and a == records.LOCK_VIOLATION:
                locked = False
            elif rtype == records.STATE and a == S_OFF and b == S_RETEST:
                # the key off ends a retest (a refusal, or a retest already missed or failed whose alarm
                # stops): the next request opens a new window
                self.retest_asked = None
            elif rtype == records.RETEST:
                if b == 1:
                    if self.retest_asked is None:
                        self.retest_asked = wall
                else:
                    self.retest_asked = None
            elif rtype == records.ABORT:
                if self.last_abort is not None:
                    assert wall - self.last_abort >= 2, "two aborts %d s apart" % (wall - self.last_abort)
                self.last_abort = wall
            elif rtype in (records.TEST_REQUEST, records.BOOT, records.RESULT):
                self.last_abort = None
        if fsm is None:
            return
        if self.vlock_seen and not fsm.vlock:
            assert self.clear_expected, "a violation lockout ended without an authenticated clear"
        self.vlock_seen = fsm.vlock
        self.clear_expected = False
        if fsm.state == S_RETEST and not fsm._retest_missed and self.retest_asked is not None:
            # the window runs from the first request: neither a cut nor anything else opens a new one
            grace = fsm.policy.analysis_ms // 1000 + 1 if fsm.test.phase == breath.ANALYZE else 1
            assert fsm.wall - self.retest_asked <= fsm.policy.retest_window_s + grace, \
                "a retest open %d s after it was asked" % (fsm.wall - self.retest_asked)

    def _logged_since(self, seq, rtype, a=None, b=None):
        log = self.sim.log
        for s in range(seq, log.next_seq()):
            r = log.read(s)
            if r is not None and r[2] == rtype and (a is None or r[3] == a) and (b is None or r[4] == b):
                return True
        return False

    def _ready(self, *states):
        """The handset is in one of these states and waits for a blow."""
        fsm = self.sim.fsm
        return fsm is not None and fsm.state in states and fsm.test.phase == breath.READY and not fsm._notice

    def _run_until(self, predicate, ms):
        self.sim.wake()
        ok = self.sim.run_until(lambda s: predicate(), ms)
        self._track()
        return ok

    def _blow(self, brac, volume=2000, duration=5500, temp=340, hum=True):
        self.sim.world.start_blow(brac, volume, duration, temp, hum)
        self._act(duration + 100)

    # ---- the world's actions ----------------------------------------------------------------

    @rule(action=st.sampled_from(["key on", "key off", "crank", "hotwire", "stall"]))
    def vehicle(self, action):
        """The driver turns the key, cranks, hot-wires, or the engine stalls."""
        w = self.sim.world
        if action == "hotwire":
            self.hotwire()
            return
        if action == "crank":
            if w.crank():
                self.engine = True
        elif action == "stall":
            w.stall()
            self.engine = False
        else:
            w.key(action == "key on")
            if action == "key off":
                self.engine = False
        self._act()

    def hotwire(self):
        """Start the engine past the relay; with the handset powered and no start allowed, a bypass."""
        w = self.sim.world
        fsm = self.sim.fsm
        bypass = w.ignition and not w.engine and not w.relay and fsm is not None
        mark = self.sim.log.next_seq()
        if w.ignition:
            w.crank(bypass=True)
            self.engine = True
        self._act()
        if bypass:
            assert self._logged_since(mark, records.BYPASS), "a start without a pass was not booked"

    @rule(kind=st.sampled_from(["blow", "weak", "inhale"]), brac=S.bracs, volume=S.volumes,
          duration=S.blow_durations, temp=S.breath_temps, hum=st.booleans(), flow=S.weak_flows)
    def breath(self, kind, brac, volume, duration, temp, hum, flow):
        """Any blow (or an inhale, or a weak blow hovering at the minimum flow) into the mouthpiece."""
        if kind == "blow":
            self._blow(brac, volume, duration, temp, hum)
        elif kind == "weak":
            self._blow(SOBER, flow * duration // 1000, duration)
        else:
            self.sim.world.start_blow(0, -300 * duration // 4000, duration // 4, 200, False)
            self._act(duration // 4 + 100)

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
        self.cut = (self.sim.world.t, self.sim.world.engine)

    def cut_hotwire_restore(self, ms):
        """Cut the handset's power, hot-wire the engine, restore the power."""
        self.power_cut()
        if self.sim.world.ignition:
            self.sim.world.crank(bypass=True)
            self.engine = True
        self.power_on(ms)

    @precondition(lambda self: self.sim.fsm is None)
    @rule(ms=S.cut_lengths)
    def power_on(self, ms):
        self.sim.run(ms)
        cut_ms = self.sim.world.t - self.cut[0]
        mark = self.sim.log.next_seq()
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
        # a cut is booked as a violation only when it lasted the limit (the RTC untouched)
        for s in range(mark, self.sim.log.next_seq()):
            r = self.sim.log.read(s)
            if r is not None and r[2] == records.POWER_GAP and r[3] >= 0 and not self.rtc_moved:
                assert cut_ms >= fsm.policy.power_cut_s * 1000, "a %d ms cut booked as a long one" % cut_ms
        # the relay is dead without power: an engine started during the cut is a bypass (or a free restart)
        w = self.sim.world
        if w.engine and not self.cut[1] and self.sim.fsm is not None:
            assert (self._logged_since(mark, records.BYPASS)
                    or self._logged_since(mark, records.STATE, S_DRIVING, S_RESTART)), \
                "an engine started during a power cut was not booked"

    @rule(ms=st.one_of(S.short_waits, S.medium_waits, S.long_waits))
    def wait(self, ms):
        """Time passes (hours only with the ignition off: nobody idles a car for hours)."""
        if self.sim.world.ignition and ms > 10 * 60_000:
            ms = ms % (10 * 60_000)
        self._act(ms)

    @rule(delta=S.rtc_jumps)
    def rtc_jump(self, delta):
        self.sim.world.rtc_offset += delta
        self.rtc_moved = True
        self._act(1100)

    # ---- what a driver does in one go -----------------------------------------------------------

    @precondition(lambda self: self.sim.fsm is not None and not self.sim.world.engine)
    @rule(brac=S.test_bracs)
    def pass_and_start(self, brac):
        """Key on, wait for the prompt, blow, and crank in the start window."""
        w = self.sim.world
        if not w.ignition:
            w.key(True)
            self._act()
        if not self._run_until(lambda: self._ready(S_TEST), 150_000):
            return  # a lockout, a gate or a fault: nothing to blow into
        self._blow(brac)
        if (self._run_until(lambda: self.sim.fsm is not None and self.sim.fsm.state == S_START, 15_000)
                and w.crank()):
            self.engine = True
            self._act()

    @precondition(lambda self: self.sim.fsm is not None and self.sim.fsm.state == S_DRIVING)
    @rule()
    def drive_until_retest(self):
        """Drive until the next rolling retest is asked (at most 45 min away)."""
        self._run_until(lambda: self.sim.fsm is None or self.sim.fsm.state == S_RETEST, 46 * 60_000)

    @precondition(lambda self: self.sim.fsm is not None and self.sim.fsm.state == S_RETEST)
    @rule(brac=S.test_bracs, delay=st.integers(0, 7 * 60_000))
    def take_retest(self, brac, delay):
        """Wait a while (perhaps past the window), then blow into the retest."""
        self._act(delay)
        if self._run_until(lambda: self._ready(S_RETEST), 150_000):
            self._blow(brac)
            self._act(5000)

    @precondition(lambda self: self.sim.fsm is not None and not self.sim.fsm.vlock)
    @rule(how=st.sampled_from(["spree", "cut", "stall and cut", "stall, wait and cut"]), ms=S.cut_lengths)
    def break_the_rules(self, how, ms):
        """Hot-wire, leave the retest and hot-wire again until locked out; or hot-wire inside a power cut,
        perhaps after a stall with the key on (and after the free restart has lapsed)."""
        if how == "spree":
            self.violation_spree()
            return
        if how != "cut" and self.sim.world.engine:
            self.sim.world.stall()
            self.engine = False
            self._act(130_000 if "wait" in how else 1000)
        self.cut_hotwire_restore(ms)

    def violation_spree(self):
        """Hot-wire, leave the retest and hot-wire again: three violations, a violation lockout."""
        w = self.sim.world
        for on in (True, False, True):
            w.key(on)
            self._act()
            if on:
                self.hotwire()
            else:
                self.engine = False
        w.key(False)
        self.engine = False
        self._act()

    @precondition(lambda self: self.sim.fsm is not None and self.sim.fsm.state in (S_VIOLATION, S_CODE))
    @rule(valid=st.booleans(), hours_ago=st.integers(-2, 7), counter_ahead=st.integers(0, 3))
    def enter_code(self, valid, hours_ago, counter_ahead):
        """From VIOLATION LOCKOUT: OK opens the code entry; type a code (valid, stale, replayed or wrong)."""
        fsm = self.sim.fsm
        w = self.sim.world
        if fsm.state == S_VIOLATION:
            w.press(OK)
            self._act(150)
        counter = fsm.code_counter + counter_ahead
        hour = fsm.wall // 3600 - hours_ago
        value = codes.code_for(self.sim.unlock_key(), self.sim.device_id, codes.ACTION_CLEAR, counter, hour)
        if not valid:
            value = (value + 1) % 10**8
        if self.used_codes and not valid:
            value = self.used_codes[-1]
        # the digits land as typed only in an entry at its first digit (one left half-typed keeps its digits)
        will_work = (valid and -1 <= hours_ago <= 5 and counter_ahead < 2 and fsm.vlock and fsm.state == S_CODE
                     and fsm.entry.pos == 0 and fsm.entry.symbol == 0
                     and fsm.codes_used < fsm.policy.codes_per_period and fsm.wall >= fsm.code_wait_until)
        self.clear_expected = will_work
        for ch in "%08d" % value:
            d = ord(ch) - 48
            for _ in range(d if d <= 6 else 12 - d):
                w.press(RIGHT if d <= 6 else LEFT)
                self.sim.wake()
                self.sim.run(150)
            w.press(OK)
            self.sim.wake()
            self.sim.run(150)
        if will_work:
            self.used_codes.append(value)
        self._act()

    @precondition(lambda self: self.sim.fsm is not None and self.sim.fsm.vlock and not self.sim.world.engine)
    @rule(valid=st.booleans())
    def key_on_and_enter_code(self, valid):
        """A composite rule: with a violation lockout, key on and type a fresh code (valid or wrong), as a driver
        with a code from the portal does (the random actions alone rarely reach the code entry)."""
        self.sim.world.key(True)
        self._act()
        if self.sim.fsm is not None and self.sim.fsm.state in (S_VIOLATION, S_CODE):
            self.enter_code(valid, 0, 0)

    # ---- authenticated and forged messages ------------------------------------------------------

    @precondition(lambda self: self.sim.fsm is not None)
    @rule(right_lockout=st.booleans(), seq_delta=st.integers(-2, 2), replay=st.booleans())
    def remote_clear(self, right_lockout, seq_delta, replay):
        fsm = self.sim.fsm
        if replay and self.last_remote is not None:
            seq, lockout = self.last_remote
            rc = fsm.apply_command(self.sim.ticks(), seq, authority.CMD_CLEAR, lockout)
            assert rc == authority.STALE, "a replayed command was applied again"
            self._act()
            return
        seq = fsm.last_command_seq + seq_delta
        lockout = fsm.lockout_id if right_lockout else fsm.lockout_id + 1
        self.clear_expected = fsm.vlock and right_lockout and seq > fsm.last_command_seq
        rc = fsm.apply_command(self.sim.ticks(), seq, authority.CMD_CLEAR, lockout)
        if rc == authority.APPLIED:
            self.last_remote = (seq, lockout)
        self._act()

    @precondition(lambda self: self.sim.fsm is not None)
    @rule(action=st.sampled_from(["clear", "service"]))
    def technician(self, action):
        """A technician's clear, or a service visit (a new service period)."""
        fsm = self.sim.fsm
        if action == "clear":
            self.clear_expected = True
            fsm.technician(self.sim.ticks(), 5, authority.TECH_CLEAR, fsm.status()["lockout_id"])
        else:
            fsm.technician(self.sim.ticks(), 5, records.SVC_RECORD)
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
        for seq in range(log.first_seq(), n):
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
    """The same world, with the event log and state on a simulated littlefs chip."""

    def storage(self):
        """FlashLog and FileState on a fresh simulated chip."""
        return FlashImage().storage()

    @invariant()
    def hash_chain_verifies(self):
        """5. The log on flash verifies: every record's CRC, the hash chain and the sequence."""
        ok, last, _h, bad = self.sim.log.verify()
        assert ok, "the chain breaks at seq %d" % bad
        assert last == self.sim.log.next_seq() - 1


def _settings(examples, steps, **kw):
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], **kw)


def test_the_examples_reach_what_matters(capsys):
    """The invariants hold, and most examples complete a test, close the relay, start, reach a retest,
    submit a code and clear a lockout (the figures are printed)."""
    global _reach
    _reach = Counter()
    try:
        run_state_machine_as_test(HandsetMachine, settings=_settings(EXAMPLES, 40))
        counts = _reach
    finally:
        _reach = None
    n = counts["examples"]
    with capsys.disabled():
        print("\nproperty-test reach over %d examples: %s" % (n, ", ".join(
            "%s %d (%d%%)" % (item, counts[item], 100 * counts[item] // n) for item in REACH)))
    for item in REACH:
        assert counts[item] * 100 >= 25 * n, "only %d of %d examples %s" % (counts[item], n, item)


TestHandsetInvariantsOnFlash = FlashHandsetMachine.TestCase
TestHandsetInvariantsOnFlash.settings = _settings(max(EXAMPLES // 4, 10), 25)


@pytest.mark.parametrize("broken", ["bypass not booked", "clear resets the count"])
def test_the_invariants_catch_a_broken_machine(monkeypatch, broken):
    """With a known hole put back into the state machine, Hypothesis finds an invariant that fails."""
    if broken == "bypass not booked":
        # the original hole: "the engine ran" outlived a stall with the key on, so a hot-wire inside a short
        # cut resumed the drive unbooked
        real = Interlock._engine_stopped

        def engine_stopped(self, now):
            real(self, now)
            self.engine_saved = self._ign

        monkeypatch.setattr(Interlock, "_engine_stopped", engine_stopped)
    else:
        real_clear = Interlock.clear_violation

        def clear_violation(self, source, detail):
            self.violations = 0  # the count per clear, not per service period
            real_clear(self, source, detail)

        monkeypatch.setattr(Interlock, "clear_violation", clear_violation)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(HandsetMachine, settings=_settings(
            300, 40, phases=[Phase.generate], database=None))
