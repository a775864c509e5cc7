"""A simulated handset: the real firmware runtime on simulated drivers, a world, a wrapping tick counter.

Power can be cut and restored; the log and state objects play the flash and outlive each boot. The tick
counter starts 20 s before its wrap point by default, so every run crosses a wrap.
"""

import hashlib

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


class SimHandset:
    """Firmware + world + clock; the methods are what the world can do to a handset."""

    def __init__(self, seed=1, start_wall=DEFAULT_WALL, ambient_dc=200, log=None, state=None, device_id=1001,
                 with_module=True, tick_start=TICK_START, provision=True):
        self.world = World(start_wall, seed, ambient_dc)
        self.trace = Trace(self.world)
        self.log = log if log is not None else MemoryLog()
        self.state = state if state is not None else MemoryState()
        self.seed = seed
        self.device_id = device_id
        self.secret = sim_secret(device_id)
        self.tick_start = tick_start
        self.hw = hardware(self.world, self.trace)
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

    def power_on(self):
        """Restore power: a new boot of the firmware on the same flash."""
        self.world.powered = True
        self.boots += 1
        self.trace.add("POWER ON")
        self.runtime = Runtime(self.hw, TracedLog(self.log, self.trace), self.state,
                               seed=self.seed * 7919 + self.boots)
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
        self.runtime = None
        w = self.world
        w.powered = False
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

    def _run_to(self, end, predicate):
        w = self.world
        while True:
            if self.runtime is None:
                w.advance(end - w.t)
                return predicate is not None and predicate(self)
            if self.next_poll > w.t:
                target = self.next_poll if self.next_poll < end else end
                w.advance(target - w.t)
            if w.t >= end and self.next_poll > w.t:
                return predicate is not None and predicate(self)
            self.next_poll = w.t + self.runtime.step(self.ticks())
            if predicate is not None and predicate(self):
                return True
            if w.t >= end:
                return predicate is not None and predicate(self)

    def unlock_key(self):
        """The unlock-code key, as the companion derives it."""
        return crypto.derive(self.secret, crypto.LABEL_UNLOCK)
