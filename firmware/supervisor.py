"""Supervision of the handset's background tasks and the hardware watchdog's feeding. Pure: ticks in, verdicts
out; the runtime loop (runtime.py) asks it each turn and feeds the watchdog only while it says all is well.

Each background task (sync, service port, button sampler) is registered with how long it may go without
reporting progress, and reports it with `beat` (through the callable `watch` returns) every turn of its loop.
A task that raises, returns (background tasks never end) or stops reporting is a failed task: the runtime
writes a FAULT record naming it, fails safe, and lets the watchdog restart the handset. The loop itself hanging
(a task that never yields) starves the watchdog the same way, with no record: the next boot's reason says it.
"""

from micropython import const

from interlock import timebase

# task ids (FAULT b=)
TASK_SYNC = const(1)
TASK_SERVICE = const(2)
TASK_BUTTONS = const(3)
TASK_BLE = const(4)

# how a task failed (FAULT c=)
HOW_RAISED = const(1)  # an exception ended it
HOW_ENDED = const(2)  # it returned
HOW_STALLED = const(3)  # no progress within its limit

# how long each task may go without reporting progress
LIMIT_BUTTONS_MS = const(2000)  # turns every 10 ms
LIMIT_SERVICE_MS = const(10000)  # turns every 5 ms; a line to the UART takes ~11 ms
LIMIT_SYNC_MS = const(300000)  # turns every 1 s, but one exchange over the modem may take minutes
LIMIT_BLE_MS = const(10000)

WATCHDOG_MS = const(8000)  # machine.WDT timeout: the runtime loop turns at least every 1 s
FAULT_HOLD_MS = const(5000)  # after failing safe, the error stays shown this long before the restart
MAX_FAULT_BOOTS = const(3)  # after this many watchdog restarts in a row, a fault stays in the safe state
FAULT_LOOP_HOLD_MS = const(60000)  # ...unless the engine runs: then it restarts after this hold, for ever
HEALTHY_MS = const(600000)  # a boot that runs this long without a fault ends a run of watchdog restarts


class Supervisor:
    """The background tasks' last progress and the first failure."""

    def __init__(self):
        self._ids = []
        self._limits = []
        self._last = []
        self.failed_task = 0  # id of the first task that failed (0 = none)
        self.failed_how = 0

    def add(self, task_id, limit_ms, now):
        """Register a task that must report progress at least every limit_ms (counting from now)."""
        self._ids.append(task_id)
        self._limits.append(limit_ms)
        self._last.append(now)

    def start(self, now):
        """The loop starts (after boot, however long it took): every task's limit counts from now."""
        last = self._last
        for i in range(len(last)):
            last[i] = now

    def watch(self, task_id, limit_ms, now, clock):
        """add() and a callable for the task to report progress with (clock() gives ticks in ms)."""
        self.add(task_id, limit_ms, now)

        def alive():
            self.beat(task_id, clock())

        return alive

    def beat(self, task_id, now):
        """The task made progress at now."""
        ids = self._ids
        for i in range(len(ids)):
            if ids[i] == task_id:
                self._last[i] = now
                return

    def ended(self, task_id, how):
        """The task is gone: raised (HOW_RAISED) or returned (HOW_ENDED)."""
        if not self.failed_task:
            self.failed_task = task_id
            self.failed_how = how

    def check(self, now):
        """The failed task's id (0 while every task is well); a task past its limit fails here."""
        if self.failed_task:
            return self.failed_task
        ids = self._ids
        for i in range(len(ids)):
            if timebase.diff(now, self._last[i]) > self._limits[i]:
                self.failed_task = ids[i]
                self.failed_how = HOW_STALLED
                return ids[i]
        return 0


async def guard(supervisor, task_id, coro):
    """Run a background task; its end (an exception or a return) is reported instead of passing silently."""
    try:
        await coro
    except Exception:  # noqa: BLE001 -- any failure of a task must reach the runtime loop
        supervisor.ended(task_id, HOW_RAISED)
    else:
        supervisor.ended(task_id, HOW_ENDED)
