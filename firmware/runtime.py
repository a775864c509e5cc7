"""The runtime loop: the only place that does I/O. It polls the drivers into one Inputs object, steps the
state machine, and turns any unexpected exception into a safe state: relay open, an error on the display,
a FAULT record written.

With a watchdog (board.Watchdog) it records why the board started at every boot (BOOT_REASON) and feeds the
watchdog once a turn, only while nothing has failed and the supervisor (supervisor.py) reports every background
task well. A failure (the loop's own, or a task that raised, ended or stalled) is recorded and fails safe; the
error stays shown for FAULT_HOLD_MS, then the feeding stops and the watchdog restarts the handset, whose boot
resumes the saved retest schedule. After MAX_FAULT_BOOTS such restarts in a row the handset stays in the safe
state (and keeps feeding) instead of restarting for ever, but only while the engine is off: with it running, a
fault never stops the retests, so the restarts go on every FAULT_LOOP_HOLD_MS (each one recorded).
"""

import board
import power
import supervisor as sv
from fsm import module as module_mod
from fsm import records
from fsm.inputs import Inputs
from fsm.machine import Interlock
from interlock import timebase

_ERROR_TEXT = b"SYSTEM ERROR    CALL SERVICE    "
BUS_ERROR_LIMIT = 3  # consecutive failed driver reads before the runtime gives up and fails safe
FAILED_POLL_MS = 1000  # the loop's interval once it has failed safe


class Outputs(board.Board):
    """The board verbs the state machine calls, over a Hardware set of drivers."""

    def __init__(self, hw, inputs):
        self.hw = hw
        self.inputs = inputs
        self.screen = bytearray(32)  # what the state machine last showed
        self._shown = bytearray(32)  # what the display holds (the screen, maybe with the battery warning)
        self.warning = b""  # a second line the runtime shows over a blank one (power.WARNING_TEXT)

    def relay(self, on):
        """Close or open the starter relay."""
        self.hw.relay.set(on)

    def horn(self, on):
        """Horn on or off."""
        self.hw.alarm.horn(on)

    def lights(self, on):
        """Lights on or off."""
        self.hw.alarm.lights(on)

    def beep(self, pattern):
        """Play a buzzer pattern."""
        self.hw.buzzer.beep(pattern)

    def heater(self, on):
        """Fuel-cell heater on or off."""
        self.hw.heater.set(on)

    def show(self, buf):
        """Send the 32-byte screen to the display (with the runtime's warning over a blank second line)."""
        screen = self.screen
        for i in range(32):
            screen[i] = buf[i]
        self.refresh()

    def refresh(self):
        """Show the state machine's screen again, with or without the warning."""
        screen = self.screen
        out = self._shown
        warn = self.warning
        blank = True
        for i in range(16, 32):
            if screen[i] != 32 and screen[i] != 0:
                blank = False
        for i in range(32):
            out[i] = warn[i - 16] if warn and blank and i >= 16 else screen[i]
        self.hw.display.show(out)

    def photo(self, reason, photo_id):
        """Take a photo named photo_id; the id goes in the log record (0 if none was taken)."""
        return self.hw.camera.capture(reason, photo_id)

    def pump(self):
        """Draw a breath sample into the fuel cell."""
        self.hw.pump.draw()

    def write_module(self, image):
        """Write the module's EEPROM (a technician's calibration); True when it took."""
        try:
            ok = self.hw.module.write_eeprom(image)
        except OSError:
            return False
        if ok:
            # what the slot now holds is what the next polls report
            self.inputs.module = module_mod.parse(image)
        return ok

    def set_clock(self, wall):
        """Write device time back to the RTC."""
        self.hw.rtc.set(wall)


class Runtime:
    """One boot of the handset: drivers in, state machine, drivers out."""

    def __init__(self, hw, log, state, policy=None, seed=1, supervisor=None):
        self.hw = hw
        self.inputs = Inputs()
        self.outputs = Outputs(hw, self.inputs)
        self.fsm = Interlock(self.outputs, log, state, policy, seed)
        self.log = log
        self.supervisor = supervisor
        self.failed = False
        self._module_present = False
        self._rtc_due = 0
        self._bus_errors = 0
        self._flag = None
        self._fault_boots = 0
        self.battery = power.Battery() if hw.supply is not None else None
        self.crank = power.CrankWatch()
        self._failed_at = -1  # tick the runtime failed safe (-1: not yet seen by _supervise)
        self._stop_logged = False  # failed safe, the engine was seen stopped (ENGINE a=0 recorded)
        self._healthy_at = -1  # tick from which this boot counts as healthy (-1: nothing to clear)

    def boot(self, now):
        """Power-up: read the RTC and the module, let the state machine load its state, record why we started."""
        battery_failed = False
        try:
            self._read(now)
            if self.battery is not None:
                try:
                    self.inputs.charging = self.hw.supply.millivolts() >= power.CHARGING_MV
                except OSError:
                    pass  # read again after the first poll
            battery_failed = self._battery_failed()
            if battery_failed:
                self.battery.resume(power.CRITICAL)  # its recovery is recorded when the supply reads well
            self.fsm.boot(now, self.inputs.rtc, battery_failed)
        except Exception as exc:  # noqa: BLE001 -- any failure must end in the safe state
            self._fail_safe(exc)
        wd = self.hw.watchdog
        if wd is not None:
            try:
                # watchdog restarts in a row (kept where a restart keeps it); any other start ends the run
                cause = wd.reset_cause()
                if cause == board.RESET_POWER and battery_failed:
                    cause = board.RESET_BROWNOUT
                self._fault_boots = wd.fault_boots() + 1 if cause == board.RESET_WATCHDOG else 0
                wd.set_fault_boots(self._fault_boots)
                self.log.append(self.fsm.wall, records.BOOT_REASON, cause, self._fault_boots, 0, 0)
            except Exception as exc:  # noqa: BLE001
                self._fail_safe(exc)
            if self._fault_boots:
                self._healthy_at = timebase.add(now, sv.HEALTHY_MS)
        if self.supervisor is not None:
            self.supervisor.start(now)

    def _battery_failed(self):
        """The log's last record says the supply was sagging away (power.CRITICAL) with the engine off when the
        power went. A running engine charges its battery: a sag recorded with the engine on (c=1) is a failed
        charging circuit or a resistor in the lead, and the gap after it is booked as a cut."""
        if self.battery is None:
            return False
        log = self.log
        last = log.next_seq() - 1
        rec = log.read(last) if last > 0 else None
        return rec is not None and rec[2] == records.VOLTAGE and rec[3] == power.CRITICAL and rec[5] == 0

    def _supply(self, now, mv):
        """A reading of the vehicle supply: record a level change, show or clear the warning."""
        bat = self.battery
        engine = self.inputs.engine
        level = bat.update(now, mv)
        self.inputs.charging = mv >= power.CHARGING_MV  # the next poll's engine check (fsm.machine._engine_sense)
        # a start's signature on the supply, for the next poll; only while the engine input reads off (with it on,
        # the start was seen from the input, and a key-off right after it must not look like a start)
        start = self.crank.update(now, mv)
        self.inputs.supply_start = start and not engine
        self.inputs.cranking = self.crank.pending()
        if level >= 0:
            self.log.append(self.fsm.wall, records.VOLTAGE, level, mv, 1 if engine else 0, 0)
        out = self.outputs
        want = power.WARNING_TEXT if bat.level != power.OK and not engine else b""
        if want != out.warning:
            out.warning = want
            out.refresh()

    def step(self, now):
        """One turn of the loop, on the board and in the simulator: poll, supervise, then the ms until the next
        poll."""
        self.poll(now)
        self._supervise(now)
        if self.failed:
            self._watch_engine(now)
        return self.fsm.poll_ms if not self.failed else FAILED_POLL_MS

    def _supervise(self, now):
        """Check the background tasks; feed the watchdog while all is well (and while an error is held)."""
        sup = self.supervisor
        if sup is not None and not self.failed:
            task = sup.check(now)
            if task:
                self._fail_safe(None, records.FAULT_TASK, task, sup.failed_how)
        wd = self.hw.watchdog
        if wd is None:
            return
        if not self.failed:
            if self._healthy_at != -1 and timebase.diff(now, self._healthy_at) >= 0:
                self._healthy_at = -1
                self._fault_boots = 0
                wd.set_fault_boots(0)
            wd.feed()
            return
        if self._failed_at == -1:
            self._failed_at = now
        hold = sv.FAULT_HOLD_MS
        if self._fault_boots >= sv.MAX_FAULT_BOOTS:
            if not self._engine_running():
                # restarts have not helped: stay in the safe state, showing the error; the open relay keeps
                # the vehicle parked, so there is no drive and no retest to skip
                wd.feed()
                return
            # a fault loop while the engine runs: a fault must not be a way to drive on without retests, so
            # the handset keeps restarting (less often): each boot resumes the saved retest schedule, and a
            # retest that could not be taken is booked as missed once its window has passed
            hold = sv.FAULT_LOOP_HOLD_MS
        if timebase.diff(now, self._failed_at) < hold:
            wd.feed()
        # past the hold: no more feeding; the watchdog restarts the handset

    def _watch_engine(self, now):
        """Failed safe, the state machine polls nothing until the next boot, and the relay is open: an engine that
        ran at the fault (as the state says) and is seen stopped since is recorded, once (ENGINE a=0, replayed at
        boot), so that the next boot, finding it running, knows it was started past the open relay: a bypass, not
        a drive that ran through the fault. The engine input reading off while the alternator still charges is a
        cut sense wire, not a stop (as in the state machine's own check); an unreadable input is no stop either."""
        if self._stop_logged or not self.fsm.engine_saved or self._engine_running():
            return
        try:
            if self.hw.supply is not None and self.hw.supply.millivolts() >= power.CHARGING_MV:
                return
        except Exception:  # noqa: BLE001
            return
        self._stop_logged = True
        fsm = self.fsm
        gone = timebase.diff(now, self._failed_at) // 1000 if self._failed_at != -1 else 0
        try:
            self.log.append(fsm.wall + (gone if gone > 0 else 0), records.ENGINE, 0, 0, 0, 0)
        except Exception:  # noqa: BLE001
            pass

    def _engine_running(self):
        """The engine runs now (read afresh: a failed runtime polls nothing); an unreadable input counts as
        running, so a pulled lead cannot hold the handset in the safe state through a drive."""
        try:
            return bool(self.hw.vehicle.engine_running())
        except Exception:  # noqa: BLE001
            return True

    def poll(self, now):
        """One poll of every driver and one step of the state machine."""
        if self.failed:
            return
        try:
            self._read(now)
        except OSError as exc:
            # a bus glitch (I2C NAK, CRC error) skips one poll; several in a row are a fault
            self._bus_errors += 1
            if self._bus_errors >= BUS_ERROR_LIMIT:
                self._fail_safe(exc)
            return
        except Exception as exc:  # noqa: BLE001
            self._fail_safe(exc)
            return
        self._bus_errors = 0
        try:
            self.fsm.step(now, self.inputs)
        except Exception as exc:  # noqa: BLE001
            self._fail_safe(exc)
            return
        if self.battery is not None:
            try:
                mv = self.hw.supply.millivolts()
            except OSError:
                return  # a bus glitch on the supply input: the next poll reads it again
            try:
                self._supply(now, mv)
            except Exception as exc:  # noqa: BLE001
                self._fail_safe(exc)

    def _read(self, now):
        hw = self.hw
        inp = self.inputs
        inp.ignition = hw.vehicle.ignition()
        inp.engine = hw.vehicle.engine_running()
        inp.connected = hw.link.connected()
        inp.buttons = hw.buttons.pressed() if inp.connected else 0
        inp.flow = hw.flow.read()
        inp.breath_temp = hw.breath_temp.read()
        inp.hum = hw.hum.read()
        inp.cell = hw.fuel_cell.read()
        inp.cell_temp = hw.heater.temperature()
        inp.ambient = hw.ambient.read()
        if timebase.diff(now, self._rtc_due) >= 0 or inp.rtc == 0:
            # the RTC is a slow bus device: once a second is enough (the state machine keeps its own time)
            inp.rtc = hw.rtc.now()
            self._rtc_due = timebase.add(now, 1000)
        present = hw.module.present()
        if present != self._module_present:
            self._module_present = present
            inp.module_present = present
            # the EEPROM is read once per insertion, not per poll
            inp.module = module_mod.parse(hw.module.read_eeprom()) if present else None

    def _fail_safe(self, exc, code=records.FAULT_RUNTIME, b=0, c=0):
        self.failed = True
        try:
            self.hw.relay.set(False)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.hw.display.show(_ERROR_TEXT)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.log.append(self.fsm.wall, records.FAULT, code, b, c, 0)
        except Exception:  # noqa: BLE001
            pass

    def wake(self, _pin=None):
        """An input changed (a pin interrupt calls this): poll now, not at the end of the idle interval."""
        flag = self._flag
        if flag is not None:
            flag.set()

    async def run(self, ticks_ms, tasks=()):
        """The board's loop: poll at the interval the state machine asks for, or at once when woken."""
        import asyncio

        # ThreadSafeFlag may be set from an interrupt handler; CPython's Event stands in on the host
        flag = asyncio.ThreadSafeFlag() if hasattr(asyncio, "ThreadSafeFlag") else asyncio.Event()
        self._flag = flag

        def unhandled(loop, context):
            # a task's exception nobody awaited (tasks run under supervisor.guard, so this is a backstop)
            self._fail_safe(context.get("exception"), records.FAULT_TASK, 0, sv.HOW_RAISED)

        asyncio.get_event_loop().set_exception_handler(unhandled)
        for task in tasks:
            asyncio.create_task(task)
        self.boot(ticks_ms())
        while True:
            interval = self.step(ticks_ms())
            try:
                if hasattr(asyncio, "wait_for_ms"):
                    await asyncio.wait_for_ms(flag.wait(), interval)
                else:
                    await asyncio.wait_for(flag.wait(), interval / 1000)
            except asyncio.TimeoutError:  # noqa: UP041 -- MicroPython has no builtin TimeoutError
                pass
            if hasattr(flag, "clear"):
                flag.clear()
