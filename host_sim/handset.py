"""A simulated handset: the real firmware runtime on simulated drivers, a world, a wrapping tick counter.

Power can be cut and restored; the log and state objects play the flash and outlive each boot. The tick
counter starts 20 s before its wrap point by default, so every run crosses a wrap.

Supervised (`supervised=True`, the scenario set-up `supervised`): the board's hardware watchdog and its
supervised background tasks as well. The watchdog restarts the firmware when the runtime stops feeding it (the
boot reason is recorded at every boot, as on the board); the tasks (sync, service port, buttons) report progress
at every turn of the loop until told to hang, raise once, or raise at every boot (`task NAME hang|raise|broken`).
"""

import hashlib

import board
import supervisor as sv
from host_sim.simdrivers import hardware
from host_sim.trace import Trace
from host_sim.world import World, default_module
from interlock import crypto, timebase
from runtime import Runtime
from storage.memory import MemoryLog, MemoryState

TICK_START = timebase.TICKS_PERIOD - 20000
DEFAULT_WALL = timebase.days_from_civil(2026, 11, 22) * timebase.DAY + 8 * 3600


def sim_secret(device_id):
    """The simulator's handset secret for a device id (fixed, so scenarios can compute unlock codes)."""
    return hashlib.sha256(("interlock simulated handset %d" % device_id).encode()).digest()


class TracedLog:
    """The event log with every committed record copied into the trace; everything else passes through."""

    def __init__(self, log, trace):
        self.inner = log
        self.trace = trace

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        """Commit and trace one record."""
        seq = self.inner.append(wall, rtype, a, b, c, photo)
        self.trace.record((seq, wall, rtype, a, b, c, photo))
        return seq

    def __getattr__(self, name):
        # next_seq, read, acknowledge, raw, export_read, ...: the wrapped log's own
        return getattr(self.inner, name)


class SimWatchdog(board.Watchdog):
    """The board's watchdog on world time: started by the first feed, it bites WATCHDOG_MS after the last one.
    The fault count survives a watchdog restart, not a power cut (the ESP32's RTC slow memory)."""

    def __init__(self, world, timeout_ms=sv.WATCHDOG_MS):
        self.world = world
        self.timeout_ms = timeout_ms
        self.fed_at = -1  # world ms of the last feed; -1 = not started this boot
        self.cause = board.RESET_POWER
        self.faults = 0

    def feed(self):
        """Restart the countdown."""
        self.fed_at = self.world.t

    def bite_at(self):
        """World ms at which it restarts the handset, or -1 while not started."""
        return -1 if self.fed_at < 0 else self.fed_at + self.timeout_ms

    def reset_cause(self):
        """board.RESET_* of this boot."""
        return self.cause

    def fault_boots(self):
        """Kept across watchdog restarts."""
        return self.faults

    def set_fault_boots(self, n):
        """Keep n for the next boot."""
        self.faults = n


# the simulated background tasks: name -> (task id, its progress limit)
TASKS = {"sync": (sv.TASK_SYNC, sv.LIMIT_SYNC_MS), "service": (sv.TASK_SERVICE, sv.LIMIT_SERVICE_MS),
         "buttons": (sv.TASK_BUTTONS, sv.LIMIT_BUTTONS_MS)}


class SimHandset:
    """Firmware + world + clock; the methods are what the world can do to a handset."""

    def __init__(self, seed=1, start_wall=DEFAULT_WALL, ambient_dc=200, log=None, state=None, device_id=1001,
                 with_module=True, tick_start=TICK_START, provision=True, supervised=False):
        self.world = World(start_wall, seed, ambient_dc)
        self.trace = Trace(self.world)
        self.log = log if log is not None else MemoryLog()
        self.state = state if state is not None else MemoryState()
        self.seed = seed
        self.device_id = device_id
        self.secret = sim_secret(device_id)
        self.tick_start = tick_start
        self.hw = hardware(self.world, self.trace)
        self.watchdog = None
        self.supervisor = None
        self.task_modes = {}  # task name -> "ok", "hang", "raise" (once), "broken" (raises at every boot)
        if supervised:
            self.watchdog = self.hw.watchdog = SimWatchdog(self.world)
            for name in TASKS:
                self.task_modes[name] = "ok"
        self.boots = 0
        self.runtime = None
        self.next_poll = 0
        self._provision = provision
        if with_module:
            self.world.insert_module(default_module(start_wall=start_wall))
        self.power_on()

    @property
    def fsm(self):
        """The running state machine (None while power is off)."""
        return self.runtime.fsm if self.runtime is not None else None

    def ticks(self):
        """The firmware's tick counter now: wraps at 2**30 like MicroPython's."""
        return (self.tick_start + self.world.t) & (timebase.TICKS_PERIOD - 1)

    def power_on(self, cause=board.RESET_POWER):
        """Restore power: a new boot of the firmware on the same flash."""
        self.world.powered = True
        self.boots += 1
        self.trace.add("POWER ON" if cause == board.RESET_POWER else "RESTART")
        wd = self.watchdog
        if wd is not None:
            wd.cause = cause
            wd.fed_at = -1
            self.supervisor = sv.Supervisor()
            for name in TASKS:
                if self.task_modes[name] != "broken":
                    self.task_modes[name] = "ok"  # a restart starts every task afresh
                self.supervisor.add(TASKS[name][0], TASKS[name][1], self.ticks())
        self.runtime = Runtime(self.hw, TracedLog(self.log, self.trace), self.state,
                               seed=self.seed * 7919 + self.boots, supervisor=self.supervisor)
        self.runtime.boot(self.ticks())
        if self._provision and self.runtime.fsm.secret is None and not self.runtime.failed:
            # the factory step a technician does over the service port; a dead flash refuses it
            try:
                self.runtime.fsm.provision(self.ticks(), self.device_id, self.secret)
            except OSError:
                self.runtime.failed = True
        self.next_poll = self.world.t

    def power_cut(self):
        """Cut power: the firmware stops at once; outputs fall dead; flash and RTC keep what they hold."""
        self.trace.add("POWER CUT")
        self._stop()
        self.world.powered = False
        if self.watchdog is not None:
            self.watchdog.faults = 0  # the RTC's slow memory does not outlive a power loss

    def _stop(self):
        """The firmware stops; every output falls to its off level (pull-downs hold them while in reset)."""
        self.runtime = None
        w = self.world
        w.relay = False
        w.heater = False
        w.horn = False
        w.lights = False

    def wake(self):
        """An input changed: on a board its pin interrupt wakes the runtime loop; here the next poll is now."""
        if self.next_poll > self.world.t:
            self.next_poll = self.world.t

    def run(self, ms):
        """Let ms of world time pass, stepping the firmware's runtime loop (Runtime.step, as Runtime.run does on
        a board) at the interval it asks for."""
        end = self.world.t + ms
        self._run_to(end, None)

    def run_until(self, predicate, limit_ms):
        """Run until predicate(self) holds after a poll, or limit_ms pass; returns whether it held."""
        return self._run_to(self.world.t + limit_ms, predicate)

    def set_task(self, name, mode):
        """Make a supervised task hang, raise once, raise at every boot ("broken"), or run normally ("ok")."""
        self.task_modes[name] = mode
        self.trace.add("TASK %s %s" % (name, mode))

    def _tasks_turn(self):
        """Each simulated task's turn before a loop turn: report progress, or fail as it was told to."""
        sup = self.supervisor
        now = self.ticks()
        for name in TASKS:
            mode = self.task_modes[name]
            if mode == "ok":
                sup.beat(TASKS[name][0], now)
            elif mode == "raise" or mode == "broken":
                sup.ended(TASKS[name][0], sv.HOW_RAISED)
                if mode == "raise":
                    self.task_modes[name] = "dead"

    def _run_to(self, end, predicate):
        w = self.world
        while True:
            if self.runtime is None:
                w.advance(end - w.t)
                return predicate is not None and predicate(self)
            bite = self.watchdog.bite_at() if self.watchdog is not None else -1
            if self.next_poll > w.t:
                target = self.next_poll if self.next_poll < end else end
                if 0 <= bite < target:
                    target = bite
                w.advance(target - w.t)
            if 0 <= bite <= w.t:
                self.trace.add("WATCHDOG RESET")
                self._stop()
                self.power_on(board.RESET_WATCHDOG)
                continue
            if w.t >= end and self.next_poll > w.t:
                return predicate is not None and predicate(self)
            if self.supervisor is not None:
                self._tasks_turn()
            self.next_poll = w.t + self.runtime.step(self.ticks())
            if predicate is not None and predicate(self):
                return True
            if w.t >= end:
                return predicate is not None and predicate(self)

    def unlock_key(self):
        """The unlock-code key, as the companion derives it."""
        return crypto.derive(self.secret, crypto.LABEL_UNLOCK)
