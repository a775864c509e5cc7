"""The handset state machine: what the driver sees and what the relay does, from time and readings alone.

Rules of the machine, in the order `step` applies them each poll:
1. Device time (`wall`) advances from the tick counter; an RTC that disagrees by more than the policy's
   tolerance without an authenticated source is logged as a clock jump and written back; one that is more
   than a second off within the tolerance is written back unlogged (a boot takes the RTC's time).
2. Edges of the inputs are handled: handset link, module, ignition, engine. Each edge is logged.
3. The handler of the current state runs (one handler per state; `_enter` logs every transition).
4. Long timers: early-recall deadline, heartbeat.
5. The screen is rendered from the state and sent to the display only when it changed.
6. If anything persistent changed, the state is saved once (the log record always comes first: the log is the
   write-ahead record, and `boot` replays records the saved state does not yet reflect).

Gate states (`INSERT MODULE`, `MODULE EXP`, `VIOLATION LOCKOUT`, ...) are re-evaluated every poll in every
state where the engine is off, so the relay can only be on in START or RESTART with no gate closed.
"""


from board import BEEP_ERROR, BEEP_PROMPT, BEEP_RETEST, LEFT, OK, RIGHT
from fsm import breath, entry, menu, persist, records, view
from fsm.authority import Authority
from fsm.policy import Policy
from fsm.prng import Prng
from fsm.screen import Screen
from fsm.states import (  # noqa: F401  (the states are part of this module's interface)
    PHOTO_REQUEST,
    PHOTO_RETEST,
    PHOTO_SAMPLE,
    POLL_FAST,
    POLL_IDLE,
    POLL_NORMAL,
    S_CODE,
    S_DISCONNECTED,
    S_DRIVING,
    S_FAULT,
    S_INSPECTION,
    S_MENU,
    S_MODULE_EXP,
    S_NO_MODULE,
    S_OFF,
    S_PAYMENT,
    S_RESTART,
    S_RESULT,
    S_RETEST,
    S_SERVICE_LOCK,
    S_START,
    S_TEMP_LOCK,
    S_TEST,
    S_VIOLATION,
    STATE_NAMES,
)
from interlock import timebase

# power gaps a flat battery (the runtime's battery_failed) excuses per service period; the next one is booked as a
# cut, as the sag before it can be faked with a resistor in the supply lead
BROWNOUTS_EXCUSED = 1
# the engine input reads off with the ignition on while the supply still charges (inp.charging) this long: the
# engine runs and its sense wire is cut or failed (ENGINE a=1 b=1); the engine counts as running until the charge stops
# (ENGINE_CHARGE_LOSS_MS)
ENGINE_SENSE_HOLD_MS = 4000
# a held engine (running by the charge, its sense reading off) stops when its charge has been gone this long. A load
# switched on at idle (blower, rear screen, headlights, the radiator fan) can pull an alternator's output under
# power.CHARGING_MV until the idle speed and the regulator catch up, a second or two; 3 s rides that out, and a stall
# is seen 3 s late (its free restart starts that much later). A longer dip stops the engine, and the charge that
# comes back is watched until the key is off: held ENGINE_SENSE_HOLD_MS, it is the engine started again
# (_engine_sense)
ENGINE_CHARGE_LOSS_MS = 3000
# a start or restart window that ends while the supply shows a crank whose start is not decided yet (inp.cranking)
# stays open this much longer at most: the longest sag, the wait for the charge and its hold (power.CrankWatch), so
# a permitted crank at the window's end with the engine-sense wire cut is not booked as a bypass
CRANK_GRACE_MS = 14000


class Interlock(Authority):
    """The handset: state, timers, lockouts and counters; one instance for the life of a boot."""

    def __init__(self, board, log, state, policy=None, seed=1):
        self.board = board
        self.log = log
        self.store = state
        self._stamps = hasattr(state, "stamp")  # the store keeps the heartbeat apart from the state
        self._ident = hasattr(state, "save_identity")  # the store keeps the identity apart from the state
        self.policy = policy or Policy()
        self.screen = Screen()
        self._shown = bytearray(32)
        self._state_buf = bytearray(persist.SIZE)
        self.test = breath.BreathTest(self.policy)
        self.entry = entry.CodeEntry(self.policy.code_digits)
        self.menu = menu.Menu()
        self.prng = Prng(seed)
        self.abort_times = [0] * 10
        self._init_persistent()
        self.state = 0  # none until boot enters OFF, so every boot logs its first STATE record
        self.poll_ms = POLL_IDLE
        self.wall = 0
        self._wall_tick = 0
        self._now = 0
        self._dirty = False
        self._relay = False
        self._heater = False
        self._horn = False
        self.alarm = False
        self._ign = False
        self._ign_held = False  # the ignition input reads off while the engine runs on: taken as on
        # the engine input reads off while the alternator charges: taken as running, and how it was seen (the ENGINE
        # record's b): 1 by the charge held, 2 by a start's signature on the supply (0: not held)
        self._engine_held = 0
        self._cranking = False  # the supply shows a crank not yet decided while the engine input reads off
        self._sense_since = -1  # tick the engine input went off, or a held engine's charge came back (-1: not)
        self._charge_lost = -1  # tick a held engine's charge went away (-1: it charges)
        self._recharge = False  # a held engine stopped as its charge went: a charge back is watched till key-off
        self._engine = False
        self._connected = True
        self._module_present = False
        self._module = None
        self._state_since = 0
        self._notice = 0
        self._notice_until = 0
        self._result_kind = 0
        self._retest_missed = False
        self._beep_at = 0
        self._return_state = S_OFF
        self._code_action = 0
        self._code_msg = 0
        self._ign_logged_payment = False
        self._next_alive = 0
        self._rtc_seen = 0
        self._cell_temp = 200
        self._sample_photo = 0
        self._sample_wall = 0  # device time the last sample was complete
        self._fail_shown_until = 0
        self._fail_shown = False
        self._booting = False
        self._boot_gap = -1
        self._fail_brac = 0
        self.storage_lock = False

    def _init_persistent(self):
        self.device_id = 0
        self.secret = None
        self._keys = None
        self.vlock = False
        self.lock_cause = 0
        self.lockout_id = 0
        self.violations = 0
        self.recall_deadline = 0
        self.temp_until = 0
        self.temp_kind = 0
        self.codes_used = 0
        self.code_fails = 0
        self.code_counter = 1
        self.code_wait_until = 0
        self.payment_due = 0
        self.service_due = 0
        self.inspection_due = 0
        self.module_serial = 0
        self.module_expiry = 0
        self.expected_module = 0
        self.desired_version = 0
        self.last_command_seq = 0
        self.last_alive = 0
        self.last_sync = 0
        self.restart_until = 0
        self.retest_pending = False
        self.retest_due = 0  # device time of the next rolling retest (0: none scheduled)
        self.retest_deadline = 0  # device time the pending retest's window ends (a cut does not move it)
        self.alarm_at_save = False  # the retest alarm sounded at the cut: until the first poll after a boot
        self.engine_saved = False  # the engine ran at the last engine edge the state holds (the blip rule)
        # the engine ran held by its charge, its sense reading off (_engine_held), at the save: a boot in a charge dip
        # takes it as running in a charge loss (_after_boot)
        self.held_saved = False
        self.state_lock = False  # the saved state was found corrupt: locked for service
        self.provisioned_before = False  # a secret was installed once; never provision again in the field
        self.fail_streak = 0
        self.fail_lock_end = 0
        self.analyzing = False  # a drawn sample is being analysed (kept in the state, so a cut is seen at boot)
        self.token_lead = 0  # the token clock's lead over device time (a technician set the clock back)
        self.login_wait_line = 0  # the service port's failed-login wait levels: the cable's
        self.login_wait_net = 0  # and the network peers'
        self.startup_fail_at = 0  # device time of a failed start test no pass has followed yet (startup_fail_s)
        self.brownouts = 0  # power gaps excused as a flat battery since the last service record (BROWNOUTS_EXCUSED)

    # ---- boot and persistence ------------------------------------------------------------------

    def boot(self, now, rtc_wall, battery_failed=False):
        """Start after power-up: load the saved state (fail safe if it is unusable) and measure the gap.
        battery_failed: the supply sagged away before the gap (runtime, power.py): no violation for it."""
        self._now = now
        self._wall_tick = now
        self.wall = rtc_wall
        self._rtc_seen = rtc_wall
        data = self.store.load()
        fresh = data is None and self.log.next_seq() == 1
        log_seq = persist.unpack(data, self) if data is not None else -1
        corrupt = log_seq < 0 and not fresh
        if corrupt:
            # fail safe: locked for service, and what the held log proves (lockouts, counters, used codes,
            # an earlier provisioning) is rebuilt from it
            self._init_persistent()
            self.state_lock = True
            log_seq = self.log.first_seq()
        self._load_identity()
        if fresh:
            # first boot: save a state before the first record, so a cut right after it is not "corrupt"
            self.last_alive = rtc_wall
            self._dirty = True
            self._flush()
        self._owed_code = 0
        owed = self._replay(log_seq) if log_seq > 0 else 0
        if self._stamps:
            stamp = self.store.last_stamp()
            if stamp > self.last_alive:
                self.last_alive = stamp
        gap = -1
        back = self.last_alive and rtc_wall < self.last_alive
        if back:
            # the clock went back across the power cut (reset or wound back): time keeps moving forward from
            # the last sign of life, and the gap is unknown, which counts as a long one
            self.wall = self.last_alive
            self._log(records.CLOCK, 2, rtc_wall - self.last_alive, 0)
            self.board.set_clock(self.wall)
        elif self.last_alive:
            gap = rtc_wall - self.last_alive
        self._log(records.BOOT, menu.FIRMWARE_VERSION, gap, 1 if corrupt else 0)
        if corrupt:
            self._log(records.LOCKOUT, records.LOCK_STATE, 0, 0)
        # The gap runs from the last heartbeat, not from the cut: the cut came at most one heartbeat interval,
        # one idle poll (a heartbeat is written at the first poll after it is due) and one second (device
        # time counts whole seconds) after it. A cut is booked only when it provably lasted the limit: one
        # shorter than the limit never is, one up to alive_s + POLL_IDLE + 1 s longer may not be.
        proven = gap - self.policy.alive_s - POLL_IDLE // 1000 - 1 if gap >= 0 else -1
        if back or proven >= self.policy.power_cut_s:
            self._log(records.POWER_GAP, proven, self.policy.power_cut_s, gap)
            # a flat battery excuses the gap only so often: a driver can fake the sag with a resistor in the lead
            if back or not battery_failed or self.brownouts >= BROWNOUTS_EXCUSED:
                self._violation(records.VIO_POWER_CUT)
            else:
                self.brownouts += 1
                self._dirty = True
        if owed and not self.vlock:
            # the cut fell between a violation and the lockout it caused
            self._violation_lock(owed)
        code = self._owed_code
        if code:
            # the cut fell between an accepted code and what it was accepted for: do it now (the code is used)
            self._owed_code = 0
            if code & 1:
                if self.vlock:
                    self.clear_violation(records.SRC_CODE, code >> 1)
            else:
                self._extend_service(self.policy.code_service_days, records.SRC_CODE, code >> 1)
        if self.retest_pending and not self.retest_deadline:
            # a state of format 1 kept no deadline: the window that firmware gave after a cut, from now
            self.retest_deadline = self.wall + self.policy.retest_window_s
        if self.analyzing:
            # the cut ended the analysis of a drawn sample
            self.analyzing = False
            self._analysis_lost(2 if self.retest_pending else 1, 0)
        self._booting = True
        self._boot_gap = gap
        self.last_alive = self.wall
        self._next_alive = self.wall + self.policy.alive_s
        self.board.relay(False)
        self._relay = False
        self._enter(S_OFF)
        self._dirty = True
        self._flush()

    def _load_identity(self):
        """Device id and secret from their own store. A state of an older format held them (unpack set them):
        they move to the identity store once, and the boot's save leaves them out of the state."""
        if not self._ident:
            return
        got = persist.unpack_identity(self.store.load_identity())
        if got is not None:
            self.device_id, self.secret = got
            self._keys = None
        elif self.secret is not None:
            self.store.save_identity(persist.pack_identity(self.device_id, self.secret))

    def _after_boot(self, now, inp):
        """On the first poll after a boot: what a drive, retest or alarm that the power cut cut short means.

        The relay is dead while the handset has no power, so an engine that runs now but did not when the
        state was saved was started without a pass: the edges that follow book it as a bypass and ask a retest
        at once (unless a free-restart window still runs). An engine that ran at the save and runs now either
        ran through the cut or stalled and was hot-wired inside it; nothing tells the two apart. So the drive
        resumes unasked only when the cut was shorter than the free-restart window (the gap is measured from
        the last heartbeat, so it is never shorter than the cut) and a free restart would have been allowed
        (no retest, alarm, violation or lockout pending): a restart hidden in such a cut gains nothing that a
        stall with the power on would not have given. Any other drive that the cut interrupted is asked for a
        retest at once (RETEST c=RQ_POWER_CUT); a pending retest goes on with the deadline it had.
        """
        self._booting = False
        engine = inp.engine
        if not engine and inp.ignition and self.engine_saved and (inp.charging or self.held_saved):
            # the engine ran at the save and the alternator charges now: it runs, whatever its sense wire reads. Held
            # by its charge at the save and no charge now: the cut came in a charge dip (a load at idle), so it runs
            # held in a charge loss that begins at this poll (_engine_sense, right after: a dip it rides out, or its
            # stop and a charge back watched, as with the power on); an engine whose sense wire worked at the save
            # and reads off now stopped in the cut
            self._engine_held = 1
            engine = True
        sensed = self._engine_held
        if self.retest_pending and inp.ignition:
            self._ign = True
            self._log(records.IGNITION, 1)
            if engine and self.engine_saved:
                self._engine = True
                self._log(records.ENGINE, 1, sensed)
            # (an engine that started during the cut comes as an edge below: a bypass during the retest)
            self._resume_retest(now)
        elif self.retest_pending:
            if not self.alarm_at_save:
                # the retest asked for before the cut was never taken: a refusal
                self._log(records.RETEST, records.RT_REFUSED)
                self._violation(records.VIO_REFUSED_RETEST)
            else:
                self._log(records.ALARM, 0)  # the alarm ended with the cut and the ignition is off
            self.retest_pending = False
        elif inp.ignition and engine and self.engine_saved:
            self._ign = True
            self._engine = True
            self._log(records.IGNITION, 1)
            self._log(records.ENGINE, 1, sensed)
            if 0 <= self._boot_gap < self.policy.free_restart_s and self._restart_allowed():
                self._enter(S_DRIVING)  # a short blip: carry on, the retest schedule is kept
            else:
                self._begin_retest(now, records.RQ_POWER_CUT)
        self.engine_saved = self._engine
        self.alarm_at_save = False
        self._dirty = True

    def _replay(self, from_seq):
        """Re-apply safety records logged after the saved state was written (the log comes first).

        Returns the cause of a violation lockout that a logged violation called for but the log does not
        hold (the cut came between the two records), else 0.
        """
        p = self.policy
        owed = 0
        # bounded by the log's end at boot: a replay cannot run on for ever, whatever the log answers
        for seq in range(from_seq, self.log.next_seq()):
            rec = self.log.read(seq)
            if rec is None:
                return owed
            _s, wall, rtype, a, b, c, _p = rec
            if rtype == records.LOCKOUT and a == records.LOCK_VIOLATION:
                self.vlock = True
                self.lockout_id = seq
                self.lock_cause = c
                self.recall_deadline = 0  # as the lock did: the countdown ends with it
                owed = 0
            elif rtype == records.LOCKOUT and a == records.LOCK_TEMP:
                self.fail_streak = self.fail_streak + 1 if (
                    self.fail_streak and wall - self.fail_lock_end <= p.fail_window_s) else 1
                self.fail_lock_end = wall + b
                self.temp_until = wall + b
                self.temp_kind = a
            elif rtype == records.LOCKOUT and a == records.LOCK_ABORT:
                self.temp_until = wall + b
                self.temp_kind = a
                for i in range(len(self.abort_times)):
                    self.abort_times[i] = 0  # as the lock did: the aborts that caused it are spent
            elif rtype == records.CLEAR and (a == records.LOCK_TEMP or a == records.LOCK_ABORT):
                self.temp_until = 0
                self.temp_kind = 0
            elif rtype == records.CLEAR and a == records.LOCK_VIOLATION:
                self.vlock = False
                self.recall_deadline = 0
                self.restart_until = 0
                self._owed_code = 0
            elif rtype == records.SERVICE and a == records.SVC_EXTEND:
                self._extend_dates(wall // timebase.DAY, c)
                self._owed_code = 0
            elif rtype == records.VIOLATION:
                self.violations = b
                self.recall_deadline = c
                owed = a if b >= p.violations_lock and not self.vlock else 0
            elif rtype == records.SERVICE and a == records.SVC_RECORD:
                # a technician's service record starts a new service period, due on day c
                self.service_due = c
                self.brownouts = 0
                if self.inspection_due:
                    self.inspection_due = c
                self.violations = 0
                self.recall_deadline = 0
                self.codes_used = 0
                self.code_fails = 0
                self.code_wait_until = 0
            elif rtype == records.INSPECTION and a == 3:
                # the companion moved a due date (c: 1 service, 2 inspection)
                if c == 1:
                    self.service_due = b
                else:
                    self.inspection_due = b
            elif rtype == records.PAYMENT and a == 3:
                self.payment_due = b
            elif rtype == records.RESULT and c == 1:
                if b != records.FAIL:
                    self.fail_streak = 0
                self._startup_result(b == records.FAIL, wall, a <= self.policy.startup_excuse_brac)
            elif rtype == records.STARTUP_FAIL:
                self.startup_fail_at = 0
            elif rtype == records.FAULT and a == records.FAULT_ANALYSIS_LOST and b == 1:
                self._startup_result(True, wall)  # a lost start-test analysis counts as a failed test
            elif rtype == records.ABORT:
                self._push_abort(wall)
            elif rtype == records.CODE and a == 1:
                if c >= self.code_counter:
                    self.code_counter = c + 1
                self.codes_used = _inc(self.codes_used)
                # what the code was accepted for comes in the next record; owed until it is seen
                self._owed_code = c << 1 | (1 if b == 1 else 0)
            elif rtype == records.CODE and a == 0:
                self.code_fails = _inc(self.code_fails)
                self.code_wait_until = wall + c
            elif rtype == records.RETEST:
                if b == 1:
                    self.retest_pending = True
                    self.retest_deadline = wall + p.retest_window_s
                elif a != records.RT_MISSED and a != records.RT_FAIL:
                    self.retest_pending = False
            elif rtype == records.ALARM:
                self.alarm_at_save = a == 1
            elif rtype == records.ENGINE:
                self.engine_saved = a == 1
                # b: how an engine running with its sense reading off was seen (0: sensed; every stop is logged 0)
                self.held_saved = b != 0
            if rtype == records.RESULT or rtype == records.STATE or rtype == records.MODULE:
                # an analysis under way at the save ended after it (with its result, or a state change or the
                # module leaving stopped it): the cut did not end it
                self.analyzing = False
            elif rtype == records.SERVICE and a == records.SVC_PROVISION and b == 1:
                self.provisioned_before = True
        return owed

    def _flush(self):
        analyzing = self.test.phase == breath.ANALYZE
        if analyzing != self.analyzing:
            self.analyzing = analyzing
            self._dirty = True
        held = self._engine_held != 0
        if held != self.held_saved and not self._booting:
            # (a boot's save keeps what the state held: its first poll decides what it means)
            self.held_saved = held
            self._dirty = True
        if self._dirty:
            self._dirty = False
            self.store.save(persist.pack(self, self._state_buf))

    def _log(self, rtype, a=0, b=0, c=0, photo=0):
        return self.log.append(self.wall, rtype, a, b, c, photo)

    # ---- the poll ----------------------------------------------------------------------------

    def step(self, now, inp):
        """One poll: time, edges, the state's handler, long timers, display, persistence."""
        self._now = now
        self._cell_temp = inp.cell_temp
        self._advance_wall(now, inp.rtc)
        self._edges(now, inp)
        self._handle(now, inp)
        self._long_timers()
        view.render(self, now)
        self._flush()

    def _advance_wall(self, now, rtc):
        d = timebase.diff(now, self._wall_tick)
        if d >= 1000:
            s = d // 1000
            self.wall += s
            self._wall_tick = timebase.add(self._wall_tick, s * 1000)
        elif d < 0:
            self._wall_tick = now
        if rtc and rtc != self._rtc_seen:
            self._rtc_seen = rtc
            delta = rtc - self.wall
            tol = self.policy.clock_tolerance_s
            if delta > tol or delta < -tol:
                self._log(records.CLOCK, 2, delta, 0)
                self.board.set_clock(self.wall)
            elif delta > 1 or delta < -1:
                # within the tolerance: not logged, but set back all the same (the RTC is read about once a
                # second and device time counts whole seconds, so one second apart is no disagreement). Left
                # as it was, the next power-up would take the RTC's time: a nudge under the tolerance and a
                # short cut moved device time, and every lockout and wait kept in it, without a trace.
                self.board.set_clock(self.wall)

    def _edges(self, now, inp):
        if self._booting:
            self._after_boot(now, inp)
        if inp.connected != self._connected:
            self._connected = inp.connected
            self._log(records.HANDSET, 1 if inp.connected else 0, 1 if self._engine else 0)
            if not inp.connected and (self._engine or not self.policy.unplug_allowed):
                self._violation(records.VIO_DISCONNECT)
        present = inp.module_present and inp.module is not None
        module = inp.module if present else None
        if present != self._module_present or module is not self._module:
            self._module_edge(module)
        engine = self._engine_sense(now, inp)
        if self._ign_held and (inp.ignition or not engine):
            self._ign_held = False
        if inp.ignition != self._ign and not inp.ignition and engine and self._engine:
            # the ignition input says off but the engine runs on (a cut sense wire, or an engine that outlives
            # the key by a moment): the ignition counts as on until the engine stops, so the rolling retests go
            # on while it runs; logged once (IGNITION a=0 b=1), the key-off comes when the engine stops
            if not self._ign_held:
                self._ign_held = True
                self._log(records.IGNITION, 0, 1)
        elif inp.ignition != self._ign:
            self._ign = inp.ignition
            self._log(records.IGNITION, 1 if inp.ignition else 0)
            if inp.ignition:
                self._ignition_on(now)
            else:
                self._ignition_off()
        if engine != self._engine:
            self._engine = engine
            self.engine_saved = engine
            self._dirty = True
            # b: how a start was seen while the engine input reads off (a held engine stops unheld: 0)
            self._log(records.ENGINE, 1 if engine else 0, self._engine_held)
            if engine:
                self._engine_started(now)
            else:
                if self._ign and inp.charging:
                    self._sense_since = now  # the charge goes on: watched (_engine_sense)
                self._engine_stopped(now)

    def _engine_sense(self, now, inp):
        """The engine input, checked against the supply. A running engine charges its battery; an engine input
        that reads off with the ignition on while the charge goes on for ENGINE_SENSE_HOLD_MS is a sense wire cut
        (or failed) under a running engine: logged once (ENGINE a=1 b=1), the engine counts as running (the drive
        goes on, with its retests, as if it had never stopped) until the sense returns or the charge has been gone
        ENGINE_CHARGE_LOSS_MS. A charge that comes back after that, with the key still on, and holds
        ENGINE_SENSE_HOLD_MS is the engine running again: a start (the edge in _edges, ENGINE a=1 b=1), so a dip
        under a heavy load cannot end the retests of a drive that goes on."""
        self._cranking = inp.cranking and not inp.engine
        if inp.engine:
            self._engine_held = 0
            self._sense_since = -1
            self._charge_lost = -1
            self._recharge = False
            return True
        if self._engine_held:
            if inp.charging:
                self._charge_lost = -1
                return True
            if self._charge_lost == -1:
                self._charge_lost = now
            if timebase.diff(now, self._charge_lost) < ENGINE_CHARGE_LOSS_MS:
                return True  # a dip under a load at idle: the engine runs on
            self._engine_held = 0
            self._charge_lost = -1
            self._recharge = True
            return False
        if inp.supply_start and self._ign and not self._engine:
            # never seen running, yet the supply shows a start (power.CrankWatch: the starter's sag, then the
            # alternator's charge held 4 s; a charger or a jump pack shows no sag, a crank that did not start no
            # charge): the engine started with its sense wire cut or failed. It counts as running from now (the
            # edge in _edges: a start in the start window, a bypass in any other state) and for as long as the
            # charge lasts; the edge's record says how it was seen (ENGINE a=1 b=2: the sense wire disagrees)
            self._engine_held = 2
            self._sense_since = -1  # (a charge watched till now is this start's)
            return True
        if self._sense_since != -1:
            if not inp.charging or not self._ign:
                self._sense_since = -1
            elif timebase.diff(now, self._sense_since) >= ENGINE_SENSE_HOLD_MS:
                self._sense_since = -1
                self._engine_held = 1
                if self._recharge:
                    # the charge came back after the held engine stopped: it runs again, started (the edge in _edges:
                    # the free restart in its window, a bypass in any other state). (_recharge is read only while no
                    # engine is held: the hold's end sets it again.)
                    return True
                self._engine = True
                self.engine_saved = True
                self.restart_until = 0  # no free restart: the engine did not stop
                self._dirty = True
                self._log(records.ENGINE, 1, 1)
                return True
        if self._recharge:
            if not self._ign:
                self._recharge = False  # the key is off: the drive is over
            elif inp.charging and self._sense_since == -1:
                self._sense_since = now  # the charge is back: watched as above
        return False

    def _module_edge(self, module):
        old = self._module
        self._module = module
        self._module_present = module is not None
        if old is not None and (module is None or module.serial != old.serial):
            if self._engine:
                self._log(records.MODULE, records.MOD_TAMPER, old.serial, old.expiry_day)
                self._violation(records.VIO_TAMPER)
            else:
                self._log(records.MODULE, records.MOD_REMOVED, old.serial, old.expiry_day)
        if module is not None and (old is None or module.serial != old.serial):
            self._log(records.MODULE, records.MOD_INSERTED, module.serial, module.expiry_day)
            if self.expected_module and module.serial != self.expected_module:
                self._log(records.MODULE, records.MOD_UNEXPECTED, module.serial, self.expected_module)
            self.module_serial = module.serial
            self.module_expiry = module.expiry_day
            self._dirty = True

    # ---- ignition and engine -----------------------------------------------------------------

    def _ignition_on(self, now):
        self._ign_logged_payment = False
        day = self.wall // timebase.DAY
        if self.payment_due and day >= self.payment_due:
            self._log(records.PAYMENT, 1, self.payment_due)
        due = self._inspection_day()
        if due and due - day <= self.policy.service_remind_days and day < due + self.policy.service_grace_days:
            self._log(records.INSPECTION, 1, due)
        if self._analyzing_now():
            return  # the key came back during an analysis that outlived a key-off: it goes on
        self._route(now)

    def _ignition_off(self):
        if self._analyzing_now():
            # the sample is drawn: its analysis runs to its result, which is booked like any other (a failed
            # start test locks, a retest is passed or failed, not refused); then the key-off takes effect
            self._alarm(False)
            return
        self._key_off()

    def _analyzing_now(self):
        return (self.state == S_TEST or self.state == S_RETEST) and self.test.phase == breath.ANALYZE

    def _key_off(self):
        if self.state == S_RETEST and not self._retest_missed:
            # key off while a retest is asked for: a refusal
            self._log(records.RETEST, records.RT_REFUSED)
            self._violation(records.VIO_REFUSED_RETEST)
        elif self.state == S_DRIVING and self._restart_allowed():
            self.restart_until = self.wall + self.policy.free_restart_s
        elif self.state == S_START:
            self._end_start_window()
        self.retest_pending = False
        self._dirty = True
        self._alarm(False)
        self.test.stop()
        self._enter(S_OFF)

    def _engine_started(self, now):
        state = self.state
        if state == S_START or state == S_RESTART:
            self.restart_until = 0
            self._dirty = True
            if state == S_START or not self.retest_due:
                # a free restart keeps the retest schedule it had: stalling does not reset the clock
                self._schedule_retest(now, True)
                if state == S_START:
                    # the first retest also comes within retest_first_max_s of the start test's sample (AZ
                    # R17-5-615(B), TN 1340-03-06-.06(7) time it from the test; a crank late in the start window
                    # pushed it past), never sooner than retest_first_min_s after the start
                    cap = self._sample_wall + self.policy.retest_first_max_s
                    if self.retest_due > cap:
                        low = self.wall + self.policy.retest_first_min_s  # (drawn again: no pile-up at the cap)
                        self.retest_due = self.prng.between(low, cap) if cap > low else low
            self._enter(S_DRIVING)
        elif state == S_RETEST:
            # the engine was stopped for the retest and started without a pass: the relay was bypassed
            self._log(records.BYPASS, 0, state)
            self._violation(records.VIO_BYPASS)
        elif state != S_DRIVING:
            # started without a start permission: the relay was bypassed
            self._log(records.BYPASS, 0, state)
            self._violation(records.VIO_BYPASS)
            self._begin_retest(now, records.RQ_BYPASS)

    def _engine_stopped(self, now):
        if self.state == S_DRIVING and self._ign:
            if self._restart_allowed():
                self.restart_until = self.wall + self.policy.free_restart_s
                self._dirty = True
            self._route(now)

    def _restart_allowed(self):
        return not self.alarm and not self.recall_deadline and not self.vlock and not self.retest_pending

    # ---- routing and gates -------------------------------------------------------------------

    def _gate(self, inp_connected):
        """The blocking state that applies now (engine off), or 0 when a test may be taken."""
        if not inp_connected:
            return S_DISCONNECTED
        if self.state_lock or self.storage_lock:
            return S_SERVICE_LOCK
        if self.vlock:
            return S_VIOLATION
        if self.temp_until and self.wall < self.temp_until:
            return S_TEMP_LOCK
        if self._module is None:
            return S_NO_MODULE
        day = self.wall // timebase.DAY
        if day >= self._module.expiry_day:
            return S_MODULE_EXP
        due = self._inspection_day()
        if due and day >= due + self.policy.service_grace_days + self._outage_days(due):
            return S_INSPECTION
        if (self.policy.payment_lock and self.payment_due
                and day >= self.payment_due + self.policy.payment_grace_days + self._outage_days(self.payment_due)):
            return S_PAYMENT
        return 0

    def _outage_days(self, due):
        """outage_grace_days when no sync has come since the due day (the handset could not learn of a payment or
        a new date made since), else 0; 0 where the state allows no outage extension."""
        g = self.policy.outage_grace_days
        return g if g and self.last_sync // timebase.DAY < due else 0

    def _inspection_day(self):
        a = self.service_due
        b = self.inspection_due
        if a and b:
            return a if a < b else b
        return a or b

    def _route(self, now):
        """Go where ignition-on leads: a gate, a free restart, or a breath test."""
        if not self._ign:
            self._enter(S_OFF)
            return
        if self._engine:
            if self.state != S_RETEST:
                self._enter(S_DRIVING)
            return
        if self.state == S_RETEST and self.retest_pending:
            # a retest asked for ends only with its outcome or the ignition off, not with a clear (engine stalled)
            return
        gate = self._gate(self._connected)
        if gate:
            if gate != self.state:
                self.test.stop()
                self._enter(gate)
            return
        if self.restart_until and self.wall < self.restart_until:
            self._enter(S_RESTART)
            return
        self._start_test(now)

    def _start_test(self, now):
        self._notice = 0
        self._enter(S_TEST)
        photo = self._photo(PHOTO_REQUEST)
        self._log(records.TEST_REQUEST, 1, 0, 0, photo)
        self.test.start(now, self._cell_temp)
        if self.test.phase == breath.READY:
            self.board.beep(BEEP_PROMPT)

    # ---- state handlers ----------------------------------------------------------------------

    def _handle(self, now, inp):
        if self._notice and timebase.diff(now, self._notice_until) >= 0:
            self._notice = 0  # an abort prompt's time is up (cleared here, so it cannot return after a wrap)
        state = self.state
        buttons = inp.buttons
        # the heater keeps the cell warm whenever a test may come: ignition on and the handset plugged in
        want = (self._ign or self.test.phase == breath.ANALYZE) and self._connected and state != S_FAULT and self._module is not None
        self._set_heater(self.test.heater_wanted(inp.cell_temp, self._heater) if want else False)
        if self._engine and state != S_RETEST and state != S_DRIVING and self._ign:
            self._enter(S_DRIVING)
            state = S_DRIVING
        if state == S_OFF:
            self._on_off(buttons)
        elif state == S_TEST:
            self._on_test(now, inp)
        elif state == S_RESULT:
            self._on_result(now)
        elif state == S_START or state == S_RESTART:
            self._on_window(now)
        elif state == S_DRIVING:
            self._on_driving(now)
        elif state == S_RETEST:
            self._on_retest(now, inp)
        elif state == S_CODE:
            self._on_code(now, buttons)
        elif state == S_MENU:
            self._on_menu(now, buttons)
        elif state == S_FAULT:
            pass
        else:
            self._on_gate(now, buttons)
        state = self.state
        if not self._ign and (state == S_TEST or state == S_RETEST or state == S_RESULT) and not self._analyzing_now():
            self._key_off()  # an analysis that outlived a key-off is over (booked, or ended by a lost module)

    def _on_off(self, buttons):
        """Ignition off: dark display; any button opens the menu."""
        if buttons:
            self._open_menu(S_OFF)

    def _on_gate(self, now, buttons):
        """A blocking display; it lifts by itself when its cause goes; OK asks for a code where one can help."""
        if self._gate(self._connected) != self.state:
            self._route(now)
            return
        if buttons & OK and (self.state == S_VIOLATION or self.state == S_INSPECTION):
            self._open_code(self.state)

    def _on_test(self, now, inp):
        """The start test: heat, blow, analyse."""
        gate = self._gate(self._connected)
        if gate and self.test.phase == breath.ANALYZE and (gate == S_NO_MODULE or gate == S_DISCONNECTED):
            self.test.stop()  # no sensor, no measurement
            self._analysis_lost(1, gate)
        if gate and self.test.phase != breath.ANALYZE:
            # (a drawn sample is analysed to its result first; the result leads to the gate)
            self._route(now)
            return
        if self.test.phase == breath.READY and inp.buttons & (LEFT | RIGHT) and inp.flow < self.policy.flow_min:
            self._open_menu(S_TEST)
            return
        ev = self.test.step(now, inp)
        self._breath_event(now, ev, 1)

    def _breath_event(self, now, ev, kind):
        if ev == breath.EV_NONE or ev == breath.EV_READY:
            if ev == breath.EV_READY:
                self.board.beep(BEEP_PROMPT)
            return
        if ev == breath.EV_ABORT:
            self._abort(now, kind)
        elif ev == breath.EV_SAMPLE:
            self._sample_wall = self.wall
            self._sample_photo = self._photo(PHOTO_SAMPLE)
            self.board.pump()
        elif ev == breath.EV_RESULT:
            self._result(now, kind)
        elif ev == breath.EV_FAULT:
            self._log(records.FAULT, records.FAULT_WARMUP, self._cell_temp, kind)
            self.board.beep(BEEP_ERROR)
            if kind == 2:
                # a retest goes on (and its window keeps running): the heater tries again
                self.test.start(now, self._cell_temp)
            else:
                self._enter(S_FAULT)

    def _abort(self, now, kind):
        reason = self.test.abort
        self._notice = reason
        self._notice_until = timebase.add(now, self.policy.notice_ms)
        self.board.beep(BEEP_ERROR)
        count = self._push_abort(self.wall)
        self._log(records.ABORT, reason, count)
        self._dirty = True
        if kind == 1 and count >= self.policy.aborts_lock:
            ring = self.abort_times
            for i in range(len(ring)):
                ring[i] = 0
            self._temp_lock(records.LOCK_ABORT, self.policy.abort_lock_s, reason)

    def _push_abort(self, wall):
        """Remember an abort; returns the aborts within the policy's window."""
        ring = self.abort_times
        for i in range(len(ring) - 1, 0, -1):
            ring[i] = ring[i - 1]
        ring[0] = wall
        n = self.policy.aborts_lock if self.policy.aborts_lock < len(ring) else len(ring)
        window = wall - self.policy.abort_window_s
        count = 0
        for i in range(n):
            if ring[i] and ring[i] > window:
                count += 1
        return count

    def _result(self, now, kind):
        module = self._module
        if module is None:
            # the module left during the analysis: there is no measurement, and no result to record
            self.test.stop()
            return
        value = self.test.finish(module, self._cell_temp)
        p = self.policy
        verdict = records.PASS if value < p.warn_brac else (records.WARN if value < p.fail_brac else records.FAIL)
        self._result_kind = verdict
        self._log(records.RESULT, value, verdict, kind, self._sample_photo)
        self._notice = 0
        if kind == 2:
            self._retest_result(now, verdict)
            return
        if verdict != records.FAIL and self.fail_streak:
            self.fail_streak = 0
            self._dirty = True
        self._startup_result(verdict == records.FAIL, self.wall, value <= p.startup_excuse_brac)
        if verdict == records.FAIL:
            if p.startup_fail_now:
                # a start test at or above the fail point is a violation of its own (IN 260 IAC 3-2-1(3))
                self._violation(records.VIO_FAILED_START)
            self._fail_lock(value)
        self._enter(S_RESULT)

    def _analysis_lost(self, kind, cause):
        """A drawn sample's analysis ended without a result (cause: 0 a power cut, else the gate state).

        The test is not undone: a start test locks as a failed one does (else pulling the fuse, the module or
        the handset during every analysis gave endless tries with no fail booked); a retest goes on with the
        deadline it had and is passed, failed or missed as any other.
        """
        self._log(records.FAULT, records.FAULT_ANALYSIS_LOST, kind, cause)
        if kind == 1:
            self._startup_result(True, self.wall)  # nor did it dodge the start-up failure rule (startup_fail_s)
            self._fail_lock(0)

    def _fail_lock(self, cause):
        """The lockout after a failed start test, escalating with fails that come close together."""
        p = self.policy
        # escalate when this fail comes within the fail window of the previous lockout's end
        if self.fail_streak and self.wall - self.fail_lock_end <= p.fail_window_s:
            self.fail_streak += 1
        else:
            self.fail_streak = 1
        n = self.fail_streak - p.temp_lock_repeat  # the first temp_lock_repeat fails in a row lock alike
        seconds = p.temp_lock_s if n <= 0 else (p.temp_lock2_s if n == 1 else p.temp_lock3_s)
        self.fail_lock_end = self.wall + seconds
        self._temp_lock(records.LOCK_TEMP, seconds, cause)

    def _startup_result(self, failed, wall, excused=False):
        """A start test's verdict for the start-up failure rule (startup_fail_s): a fail opens it, a pass ends it.

        excused: the test read at or below startup_excuse_brac (TN 1340-03-06-.13: a failed start followed within
        10 minutes by a test at or below 0.020 is no violation, though 0.020 itself fails and locks). Such a fail
        ends a pending start-up failure as a pass does, and opens none of its own; with none pending it is a fail
        like any other (nothing came after it to excuse it)."""
        if excused and self.startup_fail_at:
            self.startup_fail_at = 0
            self._dirty = True
        elif failed:
            if self.policy.startup_fail_s and not self.startup_fail_at:
                self.startup_fail_at = wall
                self._dirty = True
        elif self.startup_fail_at:
            self.startup_fail_at = 0
            self._dirty = True

    def _startup_timer(self):
        """A failed start test that no pass followed within startup_fail_s is a start-up failure (MI R 257.301a(j),
        IN 260 IAC 3-2-1(3)(C), TN 1340-03-06-.13): logged once for all the fails in that time, and a violation
        where the policy says so (not again when startup_fail_now booked the fail itself). A pass at the very end
        of the window still counts."""
        p = self.policy
        if not p.startup_fail_s:
            self.startup_fail_at = 0  # the policy no longer has the rule
            self._dirty = True
            return
        if self.wall > self.startup_fail_at + p.startup_fail_s:
            vio = 1 if p.startup_fail_vio and not p.startup_fail_now else 0
            self._log(records.STARTUP_FAIL, self.startup_fail_at, p.startup_fail_s, vio)
            self.startup_fail_at = 0
            self._dirty = True
            if vio:
                self._violation(records.VIO_FAILED_START)

    def _temp_lock(self, kind, seconds, cause):
        self.temp_until = self.wall + seconds
        self.temp_kind = kind
        self._log(records.LOCKOUT, kind, seconds, cause)
        self._dirty = True

    def _on_result(self, now):
        """PASS / WARN / FAIL shown for a moment, then the start window or the lockout."""
        if timebase.diff(now, self._state_since) < self.policy.result_ms:
            return
        if self._result_kind == records.FAIL:
            self._route(now)
            return
        gate = self._gate(self._connected)
        if gate:
            self._route(now)
            return
        # the start window is kept in the state too (as the free restart's is): a handset that browns out while
        # the starter cranks boots to an engine it allowed, not to a bypass; its end is device time
        self.restart_until = self.wall + self.policy.start_window_s
        self.retest_due = 0  # (the last drive's; the start schedules the first retest afresh)
        self._dirty = True
        self._enter(S_START)

    def _on_window(self, now):
        """Relay closed: the driver may crank. Any gate or the end of the window opens it again."""
        if self._gate(self._connected):
            if self.state == S_START:
                self._end_start_window()
            self._route(now)
            return
        if self.state == S_START:
            if self._window_over(timebase.diff(now, self._state_since) - self.policy.start_window_s * 1000,
                                 CRANK_GRACE_MS):
                self._end_start_window()
                self._start_test(now)
        elif not self.restart_until or self._window_over(self.wall - self.restart_until, CRANK_GRACE_MS // 1000):
            self.restart_until = 0
            self._dirty = True
            self._start_test(now)

    def _window_over(self, over, grace):
        """A start or restart window has run `over` past its end (negative: not yet), in the unit of `grace`: it is
        over, unless a crank still being judged (inp.cranking) keeps it open up to `grace` longer."""
        return over >= 0 and not (self._cranking and over < grace)

    def _end_start_window(self):
        """The start window ends unused (timed out, a gate, the key off): what the state kept of it goes."""
        if self.restart_until:
            self.restart_until = 0
            self._dirty = True

    def _schedule_retest(self, now, first):
        p = self.policy
        if first:
            s = self.prng.between(p.retest_first_min_s, p.retest_first_max_s)
        else:
            s = self.prng.between(p.retest_next_min_s, p.retest_next_max_s)
        base = self.wall
        if not first and p.retest_next_from and self.retest_deadline:
            base = self.retest_deadline - p.retest_window_s  # timed from the previous request (CA 125.02(a)(1))
        # device time, persisted: neither a stall nor a power cut moves the next retest
        self.retest_due = base + s
        self._dirty = True

    def _on_driving(self, now):
        """Engine running: wait for the next rolling retest."""
        if not self._engine:
            self._route(now)
            return
        if self.retest_due and self.wall >= self.retest_due:
            self._begin_retest(now, records.RQ_SCHEDULE)

    def _begin_retest(self, now, why):
        self.retest_due = 0
        self.retest_pending = True
        self._retest_missed = False
        self._notice = 0
        self._fail_shown = False
        # device time, persisted: a power cut does not move the deadline
        self.retest_deadline = self.wall + self.policy.retest_window_s
        self._beep_at = now
        photo = self._photo(PHOTO_RETEST)
        self._log(records.RETEST, 0, 1, why, photo)
        self._log(records.TEST_REQUEST, 2, 0, 0, photo)
        self._dirty = True
        self.test.start(now, self._cell_temp)
        self._enter(S_RETEST)

    def _redemand(self, now):
        """retest_redemand (AZ R17-5-615(C)(7),(D)): a missed or failed retest is asked again at once, with a new
        window, a request record and its photo each time, until a pass or the ignition off. The alarm stays on;
        the violation was booked once, for the first miss or fail."""
        self.retest_deadline = self.wall + self.policy.retest_window_s
        self._beep_at = now
        photo = self._photo(PHOTO_RETEST)
        self._log(records.RETEST, 0, 1, records.RQ_REDEMAND, photo)
        self._log(records.TEST_REQUEST, 2, 0, 0, photo)
        self._dirty = True

    def _resume_retest(self, now):
        """A retest that a power cut interrupted goes on with the deadline it had; a passed one is missed."""
        self._notice = 0
        self._fail_shown = False
        self._beep_at = now
        self._retest_missed = False
        if self.alarm_at_save:
            # missed or failed before the cut: no new window, the alarm runs until a pass or ignition off
            self._retest_missed = True
            self._alarm(True)
        self.test.start(now, self._cell_temp)
        self._enter(S_RETEST)

    def _on_retest(self, now, inp):
        """Retest prompt with reminder beeps; missing it is a violation and sounds the alarm."""
        if timebase.diff(now, self._beep_at) >= 0:
            self.board.beep(BEEP_RETEST)
            self._beep_at = timebase.add(now, self.policy.retest_beep_s * 1000)
        # the moment the sample was complete decides, not the end of its analysis
        redemand = self.policy.retest_redemand
        if ((not self._retest_missed or redemand) and self.wall >= self.retest_deadline
                and not (self.test.phase == breath.ANALYZE and self._sample_wall < self.retest_deadline)):
            self._log(records.RETEST, records.RT_MISSED)
            if not self._retest_missed:
                self._violation(records.VIO_MISSED_RETEST)  # one retest request, one violation
            self._retest_missed = True
            self._alarm(True)
            if redemand:
                self._redemand(now)
        if self._fail_shown and timebase.diff(now, self._fail_shown_until) >= 0:
            self._fail_shown = False
        if self._module is None:
            # no module, no measurement: the prompt stays, the window keeps running
            if self.test.phase == breath.ANALYZE:
                self._analysis_lost(2, S_NO_MODULE)
            self.test.stop()
            return
        if self.test.phase == breath.DONE or self.test.phase == breath.IDLE:
            self.test.start(now, inp.cell_temp)
        ev = self.test.step(now, inp)
        self._breath_event(now, ev, 2)

    def _retest_result(self, now, verdict):
        if verdict == records.FAIL:
            self._log(records.RETEST, records.RT_FAIL)
            if not self._retest_missed:
                # one retest request, one violation: a blow that fails while the alarm of this same retest
                # (missed or failed) sounds is logged with its BrAC, not booked again
                self._violation(records.VIO_FAILED_RETEST)
            if self._ign:
                self._alarm(True)
            self._notice = 0
            self._retest_missed = True  # no new window: the alarm runs until a pass or ignition off
            self._fail_brac = self.test.result
            self.test.start(now, self._cell_temp)
            self._fail_shown_until = timebase.add(now, self.policy.result_ms)
            self._fail_shown = True
            if self.policy.retest_redemand:
                self._redemand(now)
            return
        self._log(records.RETEST, records.RT_PASS if verdict == records.PASS else records.RT_WARN)
        self.retest_pending = False
        self._dirty = True
        self._alarm(False)
        if self._engine:
            self._schedule_retest(now, False)
            self._enter(S_DRIVING)
        else:
            self._enter(S_RESULT)

    def _alarm(self, on):
        if on != self.alarm:
            self.alarm = on
            self.board.horn(on)
            self.board.lights(on)
            self._log(records.ALARM, 1 if on else 0)
            self._dirty = True

    # ---- violations --------------------------------------------------------------------------

    def _violation(self, cause):
        """Count a violation; start the early-recall countdown, or lock out at the policy's limit."""
        self.violations = _inc(self.violations)
        if not self.recall_deadline and not self.vlock:
            self.recall_deadline = self.wall + self.policy.recall_s
        self._log(records.VIOLATION, cause, self.violations, self.recall_deadline)
        self._dirty = True
        if self.violations >= self.policy.violations_lock and not self.vlock:
            self._violation_lock(cause)

    def _violation_lock(self, cause):
        self.vlock = True
        self.lock_cause = cause
        self.recall_deadline = 0
        self.lockout_id = self._log(records.LOCKOUT, records.LOCK_VIOLATION, 0, cause)
        self._dirty = True

    def _long_timers(self):
        if self.startup_fail_at:
            self._startup_timer()
        if self.recall_deadline and self.wall >= self.recall_deadline and not self.vlock:
            self._violation_lock(0)  # cause 0: the early-recall deadline passed
        if self.wall >= self._next_alive:
            self.last_alive = self.wall
            self._next_alive = self.wall + self.policy.alive_s
            if self._stamps:
                self.store.stamp(self.wall)  # a tiny write, not a state rewrite
            else:
                self._dirty = True
        if self.temp_until and self.wall >= self.temp_until:
            self.temp_until = 0
            self._log(records.CLEAR, self.temp_kind, records.SRC_TIMER, 0)
            self.temp_kind = 0
            self._dirty = True
        full = self.log.nearly_full()
        if full != self.storage_lock:
            self.storage_lock = full
            self._log(records.STORAGE, 1 if full else 0)

    def clear_violation(self, source, detail):
        """End a violation lockout (only the three authenticated clears call this).

        The violations stay counted: the count is per service period (a technician's service record starts a
        new one), so in a period that reached the limit every further violation locks out at once. The recall
        countdown ends with the lockout; the next violation starts a new one.
        """
        self.vlock = False
        self.recall_deadline = 0
        self.restart_until = 0
        self._log(records.CLEAR, records.LOCK_VIOLATION, source, detail)
        self._dirty = True
        if self.state == S_VIOLATION:
            self._route(self._now)

    # ---- code entry and menu -----------------------------------------------------------------

    def _open_code(self, from_state):
        self._return_state = from_state
        self._code_action = 1 if from_state == S_VIOLATION else 2
        self._code_msg = 0
        self.entry.begin(self.policy.code_digits)
        self._enter(S_CODE)

    def _on_code(self, now, buttons):
        """ENTER CODE: digits with LEFT / RIGHT / OK; wrong codes are logged and earn waits."""
        if self._code_msg:
            if timebase.diff(now, self._notice_until) >= 0 or buttons:
                self._code_msg = 0
                self._route(now)
            return
        if self.wall < self.code_wait_until or self.codes_used >= self.policy.codes_per_period:
            # waiting after wrong codes, or no code left this service period (none allowed at all, or all
            # used): nothing is typed, so a code that cannot work is not booked as a wrong one
            if buttons:
                self._route(now)
            return
        if not buttons:
            return
        outcome = self.entry.press(buttons)
        if outcome == entry.CANCEL:
            self._route(now)
        elif outcome == entry.SUBMIT:
            self._submit_code(now)

    def _submit_code(self, now):
        p = self.policy
        value = self.entry.value()
        keys = self.keys()
        counter = 0
        if keys is not None and self.codes_used < p.codes_per_period:
            counter = entry.find_counter(keys[1], self.device_id, self._code_action, value, self.code_counter,
                                         p.code_lookahead, self.wall // 3600, p.code_valid_h, p.code_digits)
        self._notice_until = timebase.add(now, p.notice_ms)
        if counter:
            self.code_counter = counter + 1
            self.codes_used = _inc(self.codes_used)
            self._log(records.CODE, 1, self._code_action, counter)
            self._dirty = True
            self._code_msg = 1
            if self._code_action == 1:
                self.clear_violation(records.SRC_CODE, counter)
            else:
                self._extend_service(p.code_service_days, records.SRC_CODE, counter)
            return
        self.code_fails = _inc(self.code_fails)
        wait = entry.wait_after(self.code_fails, p.code_free_tries)
        self.code_wait_until = self.wall + wait
        self._log(records.CODE, 0, self._code_action, wait)
        self.board.beep(BEEP_ERROR)
        self._dirty = True
        self._code_msg = 2

    def _extend_service(self, days, source, detail):
        self._log(records.SERVICE, records.SVC_EXTEND, source, days)
        self._extend_dates(self.wall // timebase.DAY, days)
        self._dirty = True

    def _extend_dates(self, day, days):
        if self.service_due:
            self.service_due = max(self.service_due, day) + days
        if self.inspection_due:
            self.inspection_due = max(self.inspection_due, day) + days

    def _open_menu(self, from_state):
        self._return_state = from_state
        self.menu.page = 0
        self._enter(S_MENU)

    def _on_menu(self, now, buttons):
        """The idle menu; closes on OK, on timeout, or when the driver blows or turns the key."""
        if buttons:
            self._state_since = now
            if not self.menu.press(buttons):
                self._leave_menu(now)
                return
        if timebase.diff(now, self._state_since) >= self.policy.menu_timeout_ms:
            self._leave_menu(now)

    def _leave_menu(self, now):
        if self._return_state == S_OFF or not self._ign:
            self._enter(S_OFF)
        else:
            self._enter(S_TEST)

    # ---- outputs -------------------------------------------------------------------------------

    def _enter(self, state):
        """Every transition: log it, set the relay for the new state, reset the state's clock."""
        old = self.state
        self._state_since = self._now
        if state != old:
            self.state = state
            self._log(records.STATE, state, old)
        relay = state == S_START or state == S_RESTART
        if relay != self._relay:
            self._relay = relay
            self.board.relay(relay)
        if state == S_TEST or state == S_RETEST or state == S_CODE:
            self.poll_ms = POLL_FAST
        elif state == S_OFF and not self.alarm:
            self.poll_ms = POLL_IDLE
        else:
            self.poll_ms = POLL_NORMAL

    def _set_heater(self, on):
        if on != self._heater:
            self._heater = on
            self.board.heater(on)

    def _photo(self, reason):
        # named after the record it goes with: unique for the life of the handset, across reboots
        return self.board.photo(reason, self.log.next_seq()) if self.policy.camera else 0

def _inc(counter):
    """counter + 1, held at 255: the persisted counters are single bytes."""
    return counter + 1 if counter < 255 else 255
