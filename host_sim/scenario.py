"""Scenario files: a timeline of world actions and expectations, run on a SimHandset.

One command per line; `#` starts a comment. Durations: 500ms, 30s, 5m, 2h, 3d. Dates: YYYY-MM-DD.
Set-up (before the first action): seed N, date YYYY-MM-DD [HH:MM], ambient C, no-module, tick-start N,
  supervised (the hardware watchdog and the supervised background tasks; a boot reason at every boot).
Actions:
  key on | key off           crank | hotwire | stall          unplug | plug
  crank no-start | hotwire no-start            (the starter turns, its sag shows on the supply; the engine does not catch)
  ignition-sense cut | ignition-sense restore   (the handset's ignition wire reads off / reads the key again)
  engine-sense cut | engine-sense restore       (the engine-running wire reads off / reads the engine again)
  wait DUR                   blow [brac=.045] [volume=2.0] [duration=5] [temp=34] [hum] [flow-ok]
                               [stored-after=1.5]  (clean air at ambient takes over after 1.5 s)
  inhale [duration=1]        press LEFT|OK|RIGHT [xN]         power cut | power on
  module remove | module insert [serial=N] [expiry=DATE] | module corrupt
  rtc +S | rtc -S            (an unauthenticated clock change)
  code clear|service [counter=N] [hours-ago=H] [value=DIGITS]   (typed on the three buttons)
  remote clear [lockout=N] [seq=N]    desired [version=N] [payment=DATE] [service=DATE] [inspection=DATE]
  policy NAME=V ...          tech clear [ID] | tech service [due=DATE] | tech time DATE [HH:MM]
  battery V                  the vehicle battery's resting voltage (12.6 full; the engine charges at 14.2; a
                               charger or a jump pack on it: 14.4); a crank sags it 2.6 V for 1 s
  alternator V               a running engine's charge (14.2; a heavy load at idle pulls it under 13.5)
  task sync|service|buttons hang|raise|broken|ok   (supervised: a background task fails, or runs again)
  wait-for "TEXT" [within DUR]        runs until either display line starts with TEXT
  say "TEXT"                          a narration line in the trace (the demo prints it)
Expectations (a failure is printed and counted, the run goes on):
  expect display "LINE1" ["LINE2"]    expect relay|horn|engine on|off    expect state NAME
  expect log TYPE [a=N] [b=N] [c=N]   (a record of that type since the previous `expect log` or `mark`)
  expect no-log TYPE [a=N] [b=N] [c=N]    (no such record since the previous `expect log` or `mark`)
  expect beeps KIND N                 (N buzzer patterns KIND, e.g. RETEST, sounded since the `mark`)
  mark                                (later log and beep expectations look only at what follows)
"""

from board import LEFT, OK, RIGHT
from fsm import authority, records
from fsm.machine import STATE_NAMES
from host_sim.handset import DEFAULT_WALL, TICK_START, SimHandset
from host_sim.world import default_module
from interlock import codes, timebase

_BUTTONS = {"LEFT": LEFT, "OK": OK, "RIGHT": RIGHT}
_RECORD_TYPES = {}
for _k in records.NAMES:
    _RECORD_TYPES[records.NAMES[_k]] = _k


_FIELD = {"a": 3, "b": 4, "c": 5, "photo": 6}


class ScenarioError(Exception):
    """A line that is not a valid scenario command."""


def tokens(line):
    """Split a line on spaces, keeping "quoted text" together (without its quotes)."""
    out = []
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == " " or c == "\t":
            i += 1
        elif c == '"':
            j = line.find('"', i + 1)
            if j < 0:
                raise ScenarioError("unterminated quote")
            out.append(line[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < n and line[j] != " " and line[j] != "\t":
                j += 1
            out.append(line[i:j])
            i = j
    return out


def duration(text):
    """Milliseconds of a duration like 500ms, 30s, 5m, 2h, 3d."""
    units = (("ms", 1), ("s", 1000), ("m", 60000), ("h", 3600000), ("d", 86400000))
    for suffix, scale in units:
        if text.endswith(suffix) and text[:-len(suffix)].isdigit():
            return int(text[:-len(suffix)]) * scale
    raise ScenarioError("bad duration " + text)


def day(text):
    """Device day of YYYY-MM-DD."""
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ScenarioError("bad date " + text)
    return timebase.days_from_civil(int(parts[0]), int(parts[1]), int(parts[2]))


def _clock(text):
    parts = text.split(":")
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ScenarioError("bad time " + text)
    return int(parts[0]) * 3600 + int(parts[1]) * 60


def _catch(args):
    """crank / hotwire: whether the engine catches (`no-start`: the starter turns, the engine does not)."""
    if not args:
        return True
    if args == ["no-start"]:
        return False
    raise ScenarioError("crank|hotwire [no-start]")


def _options(args):
    opts = {}
    for a in args:
        if "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        else:
            opts[a] = ""
    return opts


def _number(text, scale=1):
    """Decimal text (like .045 or 2.5) times scale, as an int, without floats (identical on both VMs)."""
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    whole, _, frac = text.partition(".")
    if (whole and not whole.isdigit()) or (frac and not frac.isdigit()) or not (whole or frac):
        raise ScenarioError("bad number " + text)
    digits = 0
    while scale % 10 == 0 and scale > 1:
        digits += 1
        scale //= 10
    frac = (frac + "0" * digits)[:digits]
    value = (int(whole or "0") * 10 ** digits + int(frac or "0")) * scale
    return -value if neg else value


class Scenario:
    """Runs scenario lines; collects the trace and any failed expectations."""

    def __init__(self, name="scenario", storage=None):
        self.name = name
        self.storage = storage  # (log, state) to run on, e.g. a flash image's; in memory when None
        self.seed = 1
        self.start_wall = DEFAULT_WALL
        self.ambient = 200
        self.with_module = True
        self.tick_start = TICK_START
        self.supervised = False
        self.sim = None
        self.failures = []
        self._log_mark = 1
        self._event_mark = 0
        self._lineno = 0

    def handset(self):
        """The SimHandset, created at the first action with the set-up given so far."""
        if self.sim is None:
            log, state = self.storage if self.storage is not None else (None, None)
            self.sim = SimHandset(seed=self.seed, start_wall=self.start_wall, ambient_dc=self.ambient,
                                  with_module=self.with_module, tick_start=self.tick_start, log=log,
                                  state=state, supervised=self.supervised)
        return self.sim

    def fail(self, text):
        """Record a failed expectation."""
        msg = "%s:%d: %s" % (self.name, self._lineno, text)
        self.failures.append(msg)
        if self.sim is not None:
            self.sim.trace.add("EXPECT FAILED " + text)

    def run_text(self, text):
        """Run every line of a scenario file's text."""
        for line in text.split("\n"):
            self._lineno += 1
            self.run_line(line)

    def run_line(self, line):
        """Run one command."""
        hash_at = line.find("#")
        if hash_at >= 0 and line.count('"', 0, hash_at) % 2 == 0:
            line = line[:hash_at]
        t = tokens(line.strip())
        if not t:
            return
        cmd = t[0]
        args = t[1:]
        setup = getattr(self, "_setup_" + cmd.replace("-", "_"), None)
        if setup is not None:
            if self.sim is not None:
                raise ScenarioError(cmd + " must come before the first action")
            setup(args)
            return
        handler = getattr(self, "_do_" + cmd.replace("-", "_"), None)
        if handler is None:
            raise ScenarioError("unknown command " + cmd)
        sim = self.handset()
        sim.trace.add("> " + " ".join(t))
        if cmd != "expect" and cmd != "wait" and cmd != "wait-for" and cmd != "say" and cmd != "mark":
            sim.wake()
        handler(sim, args)

    # ---- set-up ---------------------------------------------------------------------------------

    def _setup_seed(self, args):
        self.seed = int(args[0])

    def _setup_date(self, args):
        self.start_wall = day(args[0]) * timebase.DAY + (_clock(args[1]) if len(args) > 1 else 8 * 3600)

    def _setup_ambient(self, args):
        self.ambient = _number(args[0], 10)

    def _setup_no_module(self, args):
        self.with_module = False

    def _setup_tick_start(self, args):
        self.tick_start = int(args[0])

    def _setup_supervised(self, args):
        self.supervised = True

    # ---- actions --------------------------------------------------------------------------------

    def _do_mark(self, sim, args):
        self._log_mark = sim.log.next_seq()
        self._event_mark = len(sim.trace.events)

    def _do_say(self, sim, args):
        sim.trace.add("SAY " + " ".join(args))

    def _do_key(self, sim, args):
        sim.world.key(args[0] == "on")
        sim.run(50)

    def _do_wait(self, sim, args):
        sim.run(duration(args[0]))

    def _do_wait_for(self, sim, args):
        text = args[0]
        limit = duration(args[2]) if len(args) > 2 and args[1] == "within" else 600000

        def shown(s):
            first, second = s.trace.screen
            return first.startswith(text) or second.startswith(text)

        if not sim.run_until(shown, limit):
            self.fail('"%s" not shown within %dms' % (text, limit))

    def _do_blow(self, sim, args):
        o = _options(args)
        brac = _number(o.get("brac", "0"), 1000)
        volume = _number(o.get("volume", "2.0"), 1000)
        dur = _number(o.get("duration", "5.5"), 1000)
        temp = _number(o.get("temp", "34"), 10)
        stored = _number(o["stored-after"], 1000) if "stored-after" in o else 0
        sim.world.start_blow(brac, volume, dur, temp, "hum" in o, stored)
        sim.run(dur + 100)

    def _do_inhale(self, sim, args):
        o = _options(args)
        dur = _number(o.get("duration", "1"), 1000)
        sim.world.start_blow(0, -300 * dur // 1000, dur, sim.world.ambient, False)
        sim.run(dur + 100)

    def _do_press(self, sim, args):
        count = 1
        if len(args) > 1 and args[1].startswith("x"):
            count = int(args[1][1:])
        for _ in range(count):
            self._press(sim, _BUTTONS[args[0]])

    def _press(self, sim, mask):
        sim.world.press(mask)
        sim.wake()
        sim.run(150)

    def _do_battery(self, sim, args):
        sim.world.battery_mv = _number(args[0], 1000)
        sim.run(50)

    def _do_alternator(self, sim, args):
        sim.world.alternator_mv = _number(args[0], 1000)
        sim.run(50)

    def _do_task(self, sim, args):
        if sim.watchdog is None:
            raise ScenarioError("task needs the set-up `supervised`")
        if args[0] not in sim.task_modes or args[1] not in ("hang", "raise", "broken", "ok"):
            raise ScenarioError("task NAME hang|raise|broken|ok")
        sim.set_task(args[0], args[1])

    def _do_crank(self, sim, args):
        ok = sim.world.crank(catch=_catch(args))
        sim.trace.add("CRANK " + ("STARTED" if ok else "NO START"))
        sim.run(50)

    def _do_hotwire(self, sim, args):
        sim.world.crank(bypass=True, catch=_catch(args))
        sim.trace.add("CRANK BYPASSED")
        sim.run(50)

    def _do_stall(self, sim, args):
        sim.world.stall()
        sim.run(50)

    def _do_ignition_sense(self, sim, args):
        sim.world.ignition_sense_cut = args[0] == "cut"
        sim.run(50)

    def _do_engine_sense(self, sim, args):
        sim.world.engine_sense_cut = args[0] == "cut"
        sim.run(50)

    def _do_unplug(self, sim, args):
        sim.world.connected = False
        sim.run(50)

    def _do_plug(self, sim, args):
        sim.world.connected = True
        sim.run(50)

    def _do_power(self, sim, args):
        if args[0] == "cut":
            sim.power_cut()
        else:
            sim.power_on()
        sim.run(50)

    def _do_module(self, sim, args):
        o = _options(args[1:])
        if args[0] == "remove":
            sim.world.remove_module()
        elif args[0] == "corrupt":
            sim.world.insert_raw_module(b"\xff" * 32)
        else:
            data = default_module(int(o.get("serial", "1002")), start_wall=sim.world.rtc_now())
            if "expiry" in o:
                data.expiry_day = day(o["expiry"])
            sim.world.insert_module(data)
        sim.run(50)

    def _do_rtc(self, sim, args):
        sim.world.rtc_offset += int(args[0])
        sim.run(1100)

    def _do_code(self, sim, args):
        o = _options(args[1:])
        fsm = sim.fsm
        if "value" in o:
            value = o["value"]
        else:
            action = codes.ACTION_CLEAR if args[0] == "clear" else codes.ACTION_SERVICE
            counter = int(o.get("counter", str(fsm.code_counter)))
            hour = fsm.wall // 3600 - int(o.get("hours-ago", "0"))
            value = "%08d" % codes.code_for(sim.unlock_key(), sim.device_id, action, counter, hour)
        sim.trace.add("TYPING CODE " + value)
        for ch in value:
            d = ord(ch) - 48
            if d <= 6:
                for _ in range(d):
                    self._press(sim, RIGHT)
            else:
                for _ in range(12 - d):
                    self._press(sim, LEFT)
            self._press(sim, OK)

    def _do_remote(self, sim, args):
        o = _options(args[1:])
        fsm = sim.fsm
        lockout = int(o.get("lockout", str(fsm.lockout_id)))
        seq = int(o.get("seq", str(fsm.last_command_seq + 1)))
        rc = fsm.apply_command(sim.ticks(), seq, authority.CMD_CLEAR, lockout)
        sim.trace.add("REMOTE CLEAR seq=%d lockout=%d -> %s" % (seq, lockout, ("APPLIED", "STALE", "REFUSED")[rc]))
        sim.run(50)

    def _do_desired(self, sim, args):
        o = _options(args)
        fsm = sim.fsm
        version = int(o.get("version", str(fsm.desired_version + 1)))
        pay = day(o["payment"]) if "payment" in o else fsm.payment_due
        svc = day(o["service"]) if "service" in o else fsm.service_due
        ins = day(o["inspection"]) if "inspection" in o else fsm.inspection_due
        got = fsm.set_desired(sim.ticks(), version, pay, svc, ins, fsm.expected_module)
        sim.trace.add("DESIRED version=%d -> %d" % (version, got))
        sim.run(50)

    def _do_policy(self, sim, args):
        fsm = sim.fsm
        values = {}  # a technician's policy: it keeps the companion's version (fsm/policy.py)
        for k, v in _options(args).items():
            values[k] = int(v)
        ok = fsm.apply_policy(sim.ticks(), values, records.SRC_TECH)
        sim.trace.add("POLICY " + ("APPLIED" if ok else "REFUSED"))
        sim.run(50)

    def _do_tech(self, sim, args):
        fsm = sim.fsm
        now = sim.ticks()
        if args[0] == "clear":
            # `tech clear` names the lockout the status shows, as a technician does; `tech clear N` names N
            lockout = int(args[1]) if len(args) > 1 else fsm.status()["lockout_id"]
            rc = fsm.technician(now, 77, authority.TECH_CLEAR, lockout)
        elif args[0] == "service":
            o = _options(args[1:])
            rc = fsm.technician(now, 77, records.SVC_RECORD, day(o["due"]) if "due" in o else 0)
        elif args[0] == "time":
            wall = day(args[1]) * timebase.DAY + (_clock(args[2]) if len(args) > 2 else 0)
            fsm.set_time(now, wall, records.SRC_TECH)
            rc = authority.APPLIED
        else:
            raise ScenarioError("unknown tech action " + args[0])
        sim.trace.add("TECH %s -> %s" % (args[0], ("APPLIED", "STALE", "REFUSED")[rc]))
        sim.run(50)

    # ---- expectations ---------------------------------------------------------------------------

    def _do_expect(self, sim, args):
        what = args[0]
        if what == "display":
            first, second = sim.trace.screen
            if first != args[1] or (len(args) > 2 and second != args[2]):
                self.fail('display is "%s" "%s"' % (first, second))
        elif what in ("relay", "horn", "lights", "engine"):
            value = getattr(sim.world, what)
            if value != (args[1] == "on"):
                self.fail("%s is %s" % (what, "on" if value else "off"))
        elif what == "state":
            name = STATE_NAMES[sim.fsm.state] if sim.fsm is not None else "POWERED_OFF"
            if name != args[1]:
                self.fail("state is " + name)
        elif what == "log":
            self._expect_log(sim, args[1], _options(args[2:]))
        elif what == "no-log":
            self._expect_no_log(sim, args[1], _options(args[2:]))
        elif what == "beeps":
            text = "BEEP " + args[1]
            n = 0
            for event in sim.trace.events[self._event_mark:]:
                if event.endswith(text):
                    n += 1
            if n != int(args[2]):
                self.fail("%d %s beeps since the mark" % (n, args[1]))
        else:
            raise ScenarioError("unknown expectation " + what)

    def _find_log(self, sim, type_name, opts):
        """The sequence number of the first matching record since the mark, or 0."""
        if type_name not in _RECORD_TYPES:
            raise ScenarioError("unknown record type " + type_name)
        rtype = _RECORD_TYPES[type_name]
        for k in opts:
            if k not in _FIELD:
                raise ScenarioError("unknown record field " + k)
        seq = self._log_mark
        end = sim.log.next_seq()
        while seq < end:
            rec = sim.log.read(seq)
            seq += 1
            if rec is None or rec[2] != rtype:
                continue
            if all(str(rec[_FIELD[k]]) == opts[k] for k in opts):
                return seq - 1
        return 0

    def _expect_no_log(self, sim, type_name, opts):
        seq = self._find_log(sim, type_name, opts)
        if seq:
            self.fail("%s record %s #%d since #%d" % (type_name, " ".join(k + "=" + opts[k] for k in opts), seq,
                                                      self._log_mark))

    def _expect_log(self, sim, type_name, opts):
        seq = self._find_log(sim, type_name, opts)
        if seq:
            self._log_mark = seq + 1
            return
        self.fail("no %s record %s since #%d" % (type_name, " ".join(k + "=" + opts[k] for k in opts), self._log_mark))


def run_file(path, storage=None):
    """Run a scenario file (on the given (log, state), else in memory); returns the Scenario."""
    with open(path) as f:
        text = f.read()
    name = path.split("/")[-1]
    sc = Scenario(name, storage)
    sc.run_text(text)
    if sc.sim is None:
        sc.handset()
    return sc


def report(sc):
    """The printed form of a run: trace, then the expectation summary."""
    out = sc.sim.trace.lines()
    out.append("== result ==")
    for f in sc.failures:
        out.append("FAILED " + f)
    out.append("%s: %d expectation(s) failed" % (sc.name, len(sc.failures)))
    return out
