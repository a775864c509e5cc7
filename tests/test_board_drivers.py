"""ESP32 board drivers on CPython over fake buses and pins: the logic each driver adds to its chip."""

import pytest

import board
from drivers.esp32 import (
    ads1115,
    alarm,
    buttons,
    buzzer,
    ds3231,
    hd44780,
    heater,
    hum,
    link,
    ntc,
    pump,
    relay,
    sdp810,
    slot,
    vc0706,
    vehicle,
)
from tests.board_fakes import FakeI2C


class FakePin:
    """Pin stand-in: value() reads `level`, value(v) records the output history; irq() keeps the handler."""

    IRQ_RISING = 1

    def __init__(self, level=1):
        self.level = level
        self.history = []
        self.handler = None

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
        self.history.append(v)
        return None

    def irq(self, handler=None, trigger=None):
        assert trigger == self.IRQ_RISING
        self.handler = handler


class FakeADC:
    """ADC stand-in returning a settable calibrated voltage."""

    def __init__(self, uv=0):
        self.uv = uv

    def read_uv(self):
        return self.uv


# ---- HD44780 through a PCF8574: a model of the LCD decodes what the driver sends ----------------------------

class LcdModel:
    """Decodes PCF8574 output bytes into HD44780 instructions: latches a nibble on each E falling edge."""

    def __init__(self):
        self.ddram = bytearray(b"\xaa" * 0x68)   # power-on garbage: the init must clear it
        self.addr = 0
        self.eight_bit = True
        self.high = None
        self.prev = 0
        self.function = None
        self.display_on = False

    def feed(self, data):
        for b in data:
            if self.prev & 0x04 and not b & 0x04:
                self._nibble(self.prev >> 4, self.prev & 0x01)
            self.prev = b

    def _nibble(self, nib, rs):
        if self.eight_bit:
            self._execute(nib << 4, rs)
            return
        if self.high is None:
            self.high = nib
            return
        value = self.high << 4 | nib
        self.high = None
        self._execute(value, rs)

    def _execute(self, value, rs):
        if rs:
            self.ddram[self.addr] = value
            self.addr += 1
            if self.addr == 0x28:
                self.addr = 0x40
            elif self.addr == 0x68:
                self.addr = 0
        elif value & 0x80:
            self.addr = value & 0x7F
        elif value & 0x20:
            self.eight_bit = bool(value & 0x10)
            self.function = value
        elif value == 0x01:
            self.ddram[:] = b" " * 0x68
            self.addr = 0
        elif value & 0x08:
            self.display_on = bool(value & 0x04)

    def text(self):
        return bytes(self.ddram[0:16] + self.ddram[0x40:0x50])


class LcdBus(FakeI2C):
    """An I2C bus with the LCD backpack at 0x27 feeding an LcdModel."""

    def __init__(self):
        super().__init__()
        self.add(0x27, 1)
        self.lcd = LcdModel()
        self.transactions = 0
        self.fail_after = None

    def writeto(self, addr, buf):
        if self.fail_after is not None:
            if self.fail_after == 0:
                # Half a transfer gets through, then the bus gives up.
                self.lcd.feed(bytes(buf)[:1])
                raise OSError(116)
            self.fail_after -= 1
        super().writeto(addr, buf)
        self.transactions += 1
        self.lcd.feed(bytes(buf))


def _display():
    bus = LcdBus()
    disp = hd44780.Display(bus, 0x27, sleep_ms=lambda ms: None)
    return bus, disp


def test_display_init_puts_lcd_in_4_bit_two_line_mode_and_clears():
    """After construction the LCD is in 4-bit, 2-line mode, on, and blank."""
    bus, _ = _display()
    assert not bus.lcd.eight_bit
    assert bus.lcd.function == 0x28
    assert bus.lcd.display_on
    assert bus.lcd.text() == b" " * 32


def test_display_show_puts_both_lines_on_the_lcd():
    """show() of 32 bytes puts line 1 and line 2 on the LCD."""
    bus, disp = _display()
    disp.show(b"INSERT MODULE   " + b"LOCKOUT IN 119H ")
    assert bus.lcd.text() == b"INSERT MODULE   LOCKOUT IN 119H "


def test_display_writes_only_changed_cells():
    """Showing the same text again sends nothing; one changed cell costs one address and one data write."""
    bus, disp = _display()
    disp.show(b"LOCK 04:59      " + b"                ")
    before = bus.transactions
    disp.show(b"LOCK 04:59      " + b"                ")
    assert bus.transactions == before
    disp.show(b"LOCK 04:58      " + b"                ")
    assert bus.transactions == before + 2
    assert bus.lcd.text()[:16] == b"LOCK 04:58      "


def test_display_consecutive_changes_reuse_the_address_counter():
    """A run of changed cells on one line needs a single address command."""
    bus, disp = _display()
    before = bus.transactions
    disp.show(b"ANALYZING       " + b" " * 16)
    assert bus.transactions == before + 1 + 9


def test_display_replaces_non_ascii_bytes():
    """Bytes outside printable ASCII show as '?' instead of the LCD's katakana."""
    bus, disp = _display()
    disp.show(b"\x01\xff" + b" " * 30)
    assert bus.lcd.text()[:2] == b"??"


@pytest.mark.parametrize("bad", [b"short", b"x" * 33, "A" * 32])
def test_display_refuses_bad_input_and_changes_nothing(bad):
    """A wrong length or a str raises and leaves the LCD and the bus untouched."""
    bus, disp = _display()
    disp.show(b"PASS" + b" " * 28)
    before = bus.transactions
    with pytest.raises((ValueError, TypeError)):
        disp.show(bad)
    assert bus.transactions == before
    assert bus.lcd.text() == b"PASS" + b" " * 28


def test_display_recovers_after_a_bus_error_mid_update():
    """A failed write raises; the next show() re-initialises the LCD and the text is right again."""
    bus, disp = _display()
    disp.show(b"HEATING         " + b"                ")
    bus.fail_after = 3
    with pytest.raises(OSError):
        disp.show(b"BLOW            " + b"                ")
    bus.fail_after = None
    disp.show(b"BLOW            " + b"                ")
    assert bus.lcd.text() == b"BLOW            " + b" " * 16


def test_display_redraw_rewrites_every_cell():
    """redraw() makes the next show() send every cell, repairing an LCD that lost its contents."""
    bus, disp = _display()
    disp.show(b"PASS" + b" " * 28)
    bus.lcd.ddram[:] = b"\x00" * 0x68
    disp.redraw()
    disp.show(b"PASS" + b" " * 28)
    assert bus.lcd.text() == b"PASS" + b" " * 28


# ---- ADS1115 and SDP810 on the bus ------------------------------------------------------------------------

def test_fuel_cell_configures_continuous_mode_and_reads_signed_counts():
    """The ADS1115 gets AIN0, +-2.048 V, continuous, 128 SPS; read() returns the signed register."""
    bus = FakeI2C()
    bus.add(0x48, 4)
    cell = ads1115.FuelCell(bus, 0x48, 0, 2048)
    assert bus.writes == [(0x48, 1, b"\x44\x83")]
    bus.mem[0x48][0:2] = b"\x12\x34"
    assert cell.read() == 0x1234
    bus.mem[0x48][0:2] = b"\xff\xfe"
    assert cell.read() == -2
    assert isinstance(cell, board.FuelCell)


@pytest.mark.parametrize("kwargs", [{"channel": 4}, {"fsr_mv": 3000}])
def test_fuel_cell_refuses_bad_configuration(kwargs):
    """An impossible channel or range raises ValueError before touching the bus."""
    bus = FakeI2C()
    bus.add(0x48, 4)
    with pytest.raises(ValueError):
        ads1115.FuelCell(bus, **kwargs)
    assert bus.writes == []


def _sdp_frame(raw):
    out = bytearray()
    for w in (raw & 0xFFFF, 5000, 60):
        pair = bytes([w >> 8, w & 0xFF])
        out += pair + bytes([sdp810.crc8(pair, 0, 2)])
    return out


def test_breath_flow_starts_the_sensor_and_gives_signed_flow():
    """Construction starts continuous measurement; blowing is positive, inhaling negative, inversion flips."""
    bus = FakeI2C()
    bus.frames[0x25] = [_sdp_frame(6000), _sdp_frame(-6000)]
    sensor = sdp810.BreathFlow(bus)
    assert bus.writes == [(0x25, None, b"\x36\x03")]
    assert sensor.read() == 219
    assert sensor.read() == -219
    bus.frames[0x25] = [_sdp_frame(6000)]
    assert sdp810.BreathFlow(bus, invert=True).read() == -219


def test_breath_flow_raises_on_a_bus_fault():
    """A missing sensor raises OSError (the runtime decides what a sample without flow means)."""
    bus = FakeI2C()
    bus.frames[0x25] = [_sdp_frame(0)]
    sensor = sdp810.BreathFlow(bus)
    bus.down.add(0x25)
    with pytest.raises(OSError):
        sensor.read()


# ---- module slot -------------------------------------------------------------------------------------------

def test_module_slot_reads_the_eeprom_image_and_latch():
    """present() follows the debounced latch (low = latched); read_eeprom() returns the first 64 bytes."""
    bus = FakeI2C()
    bus.add(0x50, 256)
    bus.mem[0x50][:] = bytes(range(256))
    latch = FakePin(1)
    module = slot.ModuleSlot(latch, bus, stable=3)
    assert not module.present()
    latch.level = 0
    assert [module.present() for _ in range(3)] == [False, False, True]
    image = module.read_eeprom()
    assert len(image) == 64 and bytes(image) == bytes(range(64))


def test_module_slot_writes_the_image_in_pages_and_verifies_it():
    """write_eeprom() writes 8-byte pages, retries while the chip is busy, and checks the read-back."""
    bus = FakeI2C()
    bus.add(0x50, 256)
    busy = [2]
    plain = bus.writeto_mem

    def writeto_mem(addr, reg, buf):
        if busy[0]:
            busy[0] -= 1  # the previous write cycle still runs: no acknowledge
            raise OSError(19)
        plain(addr, reg, buf)

    bus.writeto_mem = writeto_mem
    slept = []
    module = slot.ModuleSlot(FakePin(0), bus, sleep_ms=slept.append)
    image = bytes(range(100, 132))
    assert module.write_eeprom(image)
    assert bytes(bus.mem[0x50][:32]) == image
    assert [w[1] for w in bus.writes] == [0, 8, 16, 24] and all(len(w[2]) == 8 for w in bus.writes)
    assert slept == [1, 1]


def test_module_slot_write_fails_when_the_chip_never_answers():
    """A module that stops answering mid-write reports failure."""
    bus = FakeI2C()
    bus.add(0x50, 256)
    module = slot.ModuleSlot(FakePin(0), bus)
    bus.down.add(0x50)
    assert not module.write_eeprom(bytes(32))


def test_module_slot_ignores_latch_bounce():
    """A latch that flickers shorter than `stable` polls does not change present()."""
    latch = FakePin(1)
    module = slot.ModuleSlot(latch, FakeI2C(), stable=3)
    seen = []
    for level in (0, 0, 1, 0, 1, 0, 0, 1):
        latch.level = level
        seen.append(module.present())
    assert seen == [False] * 8


def test_module_slot_latched_at_boot_is_present_at_once():
    """A module already latched when the board starts is present on the first poll."""
    assert slot.ModuleSlot(FakePin(0), FakeI2C()).present()


def test_module_slot_returns_none_when_the_eeprom_does_not_answer():
    """An I2C error on every try (module absent) gives None, not an exception."""
    bus = FakeI2C()
    module = slot.ModuleSlot(FakePin(0), bus)
    assert module.read_eeprom() is None


def test_module_slot_retries_a_read_that_fails_once():
    """One failed read (contacts settling) is retried and the image still comes back."""
    bus = FakeI2C()
    bus.add(0x50, 256, fill=0x5A)
    real = bus.readfrom_mem_into
    calls = []

    def flaky(addr, reg, buf):
        calls.append(addr)
        if len(calls) == 1:
            raise OSError(5)
        real(addr, reg, buf)

    bus.readfrom_mem_into = flaky
    image = slot.ModuleSlot(FakePin(0), bus).read_eeprom()
    assert bytes(image) == b"\x5a" * 64 and len(calls) == 2


def test_module_image_parses_through_the_firmware_core():
    """An image written by fsm.module.encode into the EEPROM reads back and parses to the same data."""
    from fsm import module as module_mod

    data = module_mod.ModuleData(123456, 900, 1000, 50000, 80, 215, 700)
    bus = FakeI2C()
    bus.add(0x50, 256, fill=0xFF)
    img = module_mod.encode(data)
    bus.mem[0x50][0:len(img)] = img
    parsed = module_mod.parse(slot.ModuleSlot(FakePin(0), bus).read_eeprom())
    assert parsed is not None and parsed.serial == 123456 and parsed.ref_area == 50000


# ---- buttons -------------------------------------------------------------------------------------------------

def _buttons(stable=2):
    pins = FakePin(1), FakePin(1), FakePin(1)
    return pins, buttons.Buttons(*pins, stable=stable)


def test_buttons_decide_from_samples_with_debounce():
    """A press counts after `stable` equal samples; bounces shorter than that are ignored."""
    _, b = _buttons(stable=3)
    assert b.update(board.OK) == 0
    assert b.update(0) == 0
    assert b.update(board.OK) == 0
    assert b.update(board.OK) == 0
    assert b.update(board.OK) == board.OK


def test_buttons_report_each_press_once():
    """pressed() returns a new press once; holding the button does not repeat it."""
    (left, ok, right), b = _buttons()
    ok.level = 0
    assert b.pressed() == 0
    assert b.pressed() == board.OK
    assert b.pressed() == 0
    assert b.pressed() == 0
    ok.level = 1
    b.pressed()
    b.pressed()
    ok.level = 0
    b.pressed()
    assert b.pressed() == board.OK


def test_buttons_keep_presses_seen_by_poll():
    """Presses decided by poll() between two pressed() calls are reported together."""
    (left, ok, right), b = _buttons()
    left.level = 0
    right.level = 0
    b.poll()
    b.poll()
    left.level = 1
    right.level = 1
    assert b.pressed() == board.LEFT | board.RIGHT


# ---- outputs -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("active_high,off", [(True, 0), (False, 1)])
def test_relay_is_open_from_construction(active_high, off):
    """The relay pin is driven to its open level as the driver is built, before any set()."""
    pin = FakePin(1 - off)
    r = relay.Relay(pin, active_high)
    assert pin.history == [off]
    r.set(True)
    assert pin.level == 1 - off and r.closed
    r.set(False)
    assert pin.level == off and not r.closed


class FakePWM:
    """PWM stand-in recording duty and frequency."""

    def __init__(self):
        self.duties = []
        self.frequency = None

    def duty_u16(self, d):
        self.duties.append(d)

    def freq(self, f):
        self.frequency = f


def test_alarm_starts_off_and_flashes_lights_with_pwm():
    """Horn and lights are off at construction; lights on means 50 % duty at the PWM's flash rate."""
    horn, lights = FakePin(1), FakePWM()
    a = alarm.Alarm(horn, lights)
    assert horn.level == 0 and lights.duties == [0]
    a.horn(True)
    a.lights(True)
    assert horn.level == 1 and lights.duties[-1] == 32768
    a.lights(False)
    assert lights.duties[-1] == 0


class FakeTimer:
    """One-shot timer stand-in: the test fires it."""

    ONE_SHOT = 0

    def __init__(self):
        self.armed = None

    def init(self, mode, period, callback):
        assert mode == self.ONE_SHOT
        self.armed = (period, callback)

    def deinit(self):
        self.armed = None

    def fire(self):
        period, callback = self.armed
        self.armed = None
        callback(self)
        return period


def test_buzzer_plays_a_pattern_from_the_timer():
    """beep() sounds at once and returns; each timer expiry steps to the next tone or pause."""
    pwm, timer = FakePWM(), FakeTimer()
    bz = buzzer.Buzzer(pwm, timer, 2700)
    assert pwm.frequency == 2700 and pwm.duties == [0]
    bz.beep(board.BEEP_PROMPT)
    assert pwm.duties[-1] == 32768 and bz.playing()
    periods = []
    while timer.armed:
        periods.append(timer.fire())
    assert periods == [80, 80, 80]
    assert pwm.duties[1:] == [32768, 0, 32768, 0]
    assert not bz.playing()


def test_buzzer_plays_every_beep_pattern_of_the_board_contract():
    """Each of board.BEEP_* (what the state machine sends) starts a pattern of its own on the beeper."""
    seen = set()
    for pattern in (board.BEEP_KEY, board.BEEP_PROMPT, board.BEEP_RETEST, board.BEEP_ERROR):
        pwm, timer = FakePWM(), FakeTimer()
        bz = buzzer.Buzzer(pwm, timer)
        bz.beep(pattern)
        assert pwm.duties[-1] == 32768, pattern
        seen.add(buzzer._PATTERNS[pattern])
    assert len(seen) == 4


def test_buzzer_refuses_unknown_patterns():
    """An unknown pattern id raises ValueError and leaves the beeper silent."""
    pwm, timer = FakePWM(), FakeTimer()
    bz = buzzer.Buzzer(pwm, timer)
    for bad in (0, 6, -1):
        with pytest.raises(ValueError):
            bz.beep(bad)
    assert pwm.duties == [0] and timer.armed is None


# ---- heater ----------------------------------------------------------------------------------------------

def _uv(t_c):
    import math
    r = 10000 * math.exp(3950 * (1 / (t_c + 273.15) - 1 / 298.15))
    return round(3300000 * 10000 / (r + 10000))


def test_heater_is_off_at_construction_and_follows_set():
    """The heater pin starts low, goes high on set(True) with a sane block, low again on set(False)."""
    adc, pin = FakeADC(_uv(20)), FakePin(1)
    h = heater.Heater(pin, ntc.NTC(adc))
    assert pin.level == 0
    h.set(True)
    assert pin.level == 1
    assert abs(h.temperature() - 200) <= 3
    h.set(False)
    assert pin.level == 0


def test_heater_cuts_out_over_temperature_and_on_sensor_fault():
    """Above 60 C or with an open thermistor the pin goes low although the heater was asked on."""
    adc, pin = FakeADC(_uv(30)), FakePin(0)
    h = heater.Heater(pin, ntc.NTC(adc))
    h.set(True)
    assert pin.level == 1
    adc.uv = _uv(61)
    h.temperature()
    assert pin.level == 0 and h.tripped
    adc.uv = _uv(35)
    h.temperature()
    assert pin.level == 1 and not h.tripped
    adc.uv = 0
    h.temperature()
    assert pin.level == 0 and h.tripped
    adc.uv = 0
    h.set(True)
    assert pin.level == 0


# ---- hum -------------------------------------------------------------------------------------------------

def test_hum_needs_a_held_envelope_and_has_hysteresis():
    """The tone is on after `hold` loud samples, stays on between the thresholds, goes off after `hold` quiet."""
    h = hum.HumDetect(FakeADC(), on_uv=600, off_uv=400, hold=2)
    assert [h.update(v) for v in (700, 100, 700, 700, 500, 300, 500, 300, 300)] == [0, 0, 0, 1, 1, 1, 1, 1, 0]


def test_hum_read_samples_the_adc():
    """read() averages the ADC and feeds update()."""
    adc = FakeADC(900000)
    h = hum.HumDetect(adc, hold=1)
    assert h.read() == 1
    adc.uv = 0
    assert h.read() == 0


def test_hum_refuses_inverted_thresholds():
    """on_uv must be above off_uv."""
    with pytest.raises(ValueError):
        hum.HumDetect(FakeADC(), on_uv=100, off_uv=200)


# ---- vehicle -----------------------------------------------------------------------------------------------

class WrapClock:
    """ticks_ms stand-in that wraps at 2**30 and starts just before the wrap."""

    def __init__(self):
        self.t = (1 << 30) - 300

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = (self.t + ms) & ((1 << 30) - 1)


def test_ticks_diff_matches_micropython_across_the_wrap():
    """ticks_diff gives small signed differences across the 2**30 wrap."""
    assert vehicle.ticks_diff(5, (1 << 30) - 5) == 10
    assert vehicle.ticks_diff((1 << 30) - 5, 5) == -10


def test_engine_running_from_alternator_pulses_across_tick_wrap():
    """300 Hz of W pulses means running; silence means stopped; decisions hold between windows."""
    ign, w, clock = FakePin(1), FakePin(0), WrapClock()
    v = vehicle.Vehicle(ign, w, clock)
    assert v.ignition()
    for _ in range(4):                         # 4 windows of 250 ms at 300 Hz, crossing the wrap
        for _ in range(75):
            w.handler(w)
        clock.advance(250)
        running = v.engine_running()
    assert running
    clock.advance(100)
    assert v.engine_running()                  # mid-window: the last decision
    clock.advance(250)
    assert not v.engine_running()
    ign.level = 0
    assert not v.ignition()


def test_engine_decision_has_hysteresis():
    """Between off_hz and on_hz the state does not change."""
    v = vehicle.Vehicle(FakePin(0), None, WrapClock(), on_hz=40, off_hz=20)
    assert not v.decide(30, 1000)
    assert v.decide(40, 1000)
    assert v.decide(25, 1000)
    assert not v.decide(19, 1000)


def test_stale_window_is_not_judged():
    """After a long gap without polls the window restarts instead of averaging over it."""
    w, clock = FakePin(0), WrapClock()
    v = vehicle.Vehicle(FakePin(1), w, clock)
    for _ in range(100):
        w.handler(w)
    clock.advance(20000)
    assert not v.engine_running()


def test_link_follows_its_pin():
    """Connected while the sense pin is low."""
    pin = FakePin(0)
    lk = link.HandsetLink(pin)
    assert lk.connected()
    pin.level = 1
    assert not lk.connected()


# ---- DS3231 on the bus -------------------------------------------------------------------------------------

def test_rtc_set_then_now_and_oscillator_flag():
    """set() writes the time and clears OSF; now() reads it back; lost() reports a stopped oscillator."""
    bus = FakeI2C()
    bus.add(0x68, 0x13)
    bus.mem[0x68][0x0F] = 0x88
    rtc = ds3231.DS3231(bus)
    assert rtc.lost()
    rtc.set(60_000_000)
    assert rtc.now() == 60_000_000
    assert not rtc.lost()
    assert bus.mem[0x68][0x0F] == 0x08


def test_rtc_set_out_of_range_writes_nothing():
    """A negative wall raises ValueError and the chip is not touched."""
    bus = FakeI2C()
    bus.add(0x68, 0x13)
    rtc = ds3231.DS3231(bus)
    with pytest.raises(ValueError):
        rtc.set(-5)
    assert bus.writes == []


def test_ambient_reads_the_die_temperature():
    """21.75 C in the temperature registers reads 217 deci-degrees."""
    bus = FakeI2C()
    bus.add(0x68, 0x13)
    bus.mem[0x68][0x11:0x13] = b"\x15\xc0"
    assert ds3231.Ambient(bus).read() == 217


# ---- VC0706 camera -----------------------------------------------------------------------------------------

class FakeCamera:
    """UART stand-in speaking the VC0706 protocol over a fixed JPEG."""

    def __init__(self, jpeg, alive=True):
        self.jpeg = jpeg
        self.alive = alive
        self.rx = bytearray()
        self.frozen = False
        self.commands = []

    def any(self):
        return len(self.rx)

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        n = min(n, len(self.rx))
        if n == 0:
            return None
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def write(self, cmd):
        cmd = bytes(cmd)
        self.commands.append(cmd)
        if not self.alive:
            return len(cmd)
        assert cmd[0:2] == b"\x56\x00"
        ok = b"\x76\x00" + cmd[2:3] + b"\x00\x00"
        if cmd[2] == 0x36:
            self.frozen = cmd[4] == 0
            self.rx += ok
        elif cmd[2] == 0x34:
            self.rx += b"\x76\x00\x34\x00\x04" + len(self.jpeg).to_bytes(4, "big")
        elif cmd[2] == 0x32:
            assert self.frozen
            addr = int.from_bytes(cmd[6:10], "big")
            n = int.from_bytes(cmd[10:14], "big")
            self.rx += ok + self.jpeg[addr:addr + n] + ok
        return len(cmd)


class DirFS:
    """The camera's fs: open() under a temporary directory."""

    def __init__(self, root):
        self.root = root

    def open(self, path, mode):
        full = self.root / path.lstrip("/")
        full.parent.mkdir(parents=True, exist_ok=True)
        return open(full, mode)


def test_camera_without_fs_takes_photos_by_id_and_releases_the_frame():
    """capture() freezes and resumes the frame and returns the id it was given."""
    uart = FakeCamera(b"")
    cam = vc0706.Camera(uart)
    assert cam.capture(0, 17) == 17
    assert cam.capture(0, 18) == 18
    assert not uart.frozen


def test_camera_saves_the_jpeg_when_given_a_filesystem(tmp_path):
    """With an fs the whole frame (several chunks) lands in /photos/<id>.jpg."""
    jpeg = bytes(range(256)) * 7 + b"\xff\xd9"
    uart = FakeCamera(jpeg)
    cam = vc0706.Camera(uart, DirFS(tmp_path))
    assert cam.capture(1, 41) == 41
    assert (tmp_path / "photos" / "41.jpg").read_bytes() == jpeg
    assert not uart.frozen


def test_camera_that_does_not_answer_gives_zero():
    """No reply means no photo: 0."""
    uart = FakeCamera(b"", alive=False)
    cam = vc0706.Camera(uart)
    assert cam.capture(0, 5) == 0
    uart.alive = True
    assert cam.capture(0, 5) == 5


def test_board_drivers_implement_the_interfaces():
    """Each driver class subclasses the interface whose verbs it implements."""
    pairs = [(ads1115.FuelCell, board.FuelCell), (sdp810.BreathFlow, board.BreathFlow),
             (ntc.NTC, board.BreathTemp), (hum.HumDetect, board.HumDetect), (heater.Heater, board.Heater),
             (ds3231.Ambient, board.Ambient), (slot.ModuleSlot, board.ModuleSlot),
             (buttons.Buttons, board.Buttons), (hd44780.Display, board.Display), (relay.Relay, board.Relay),
             (alarm.Alarm, board.Alarm), (buzzer.Buzzer, board.Buzzer), (vehicle.Vehicle, board.Vehicle),
             (link.HandsetLink, board.HandsetLink), (ds3231.DS3231, board.Rtc), (vc0706.Camera, board.Camera),
             (pump.Pump, board.Pump)]
    for cls, iface in pairs:
        assert issubclass(cls, iface)
        for name, member in vars(iface).items():
            if callable(member) and not name.startswith("_"):
                assert getattr(cls, name) is not member, f"{cls.__name__}.{name} not implemented"


def test_display_text_filling_every_cell_crosses_to_line_two():
    """32 changed cells in a row land on both lines: the address jumps from cell 15 to line 2."""
    bus, disp = _display()
    text = bytes(range(0x41, 0x41 + 32))
    disp.show(text)
    assert bus.lcd.text() == text


def test_pump_pulses_the_solenoid_once_per_draw():
    """draw() energises the pin and returns; the timer releases it; a second draw mid-pulse is ignored."""
    pin, timer = FakePin(1), FakeTimer()
    p = pump.Pump(pin, timer, pulse_ms=150)
    assert pin.level == 0 and isinstance(p, board.Pump)
    p.draw()
    assert pin.level == 1 and timer.armed[0] == 150
    armed = timer.armed
    p.draw()
    assert timer.armed is armed
    assert timer.fire() == 150
    assert pin.level == 0 and not p.drawing
    p.draw()
    assert pin.level == 1


def test_pulse_counter_wraps_below_two_to_the_thirty():
    """The interrupt's counter wraps to 0 after 2**30 - 1, and the rate across the wrap is still right."""
    w, clock = FakePin(0), WrapClock()
    v = vehicle.Vehicle(FakePin(1), w, clock)
    v._pulses = v._seen = (1 << 30) - 10
    for _ in range(75):
        w.handler(w)
    assert v._pulses == 65
    clock.advance(250)
    assert v.engine_running()


def test_watchdog_starts_at_the_first_feed_and_keeps_a_count_across_restarts():
    """drivers/esp32/watchdog.py: machine.WDT is created (and so started) by the first feed, not at boot, with
    the runtime's timeout; the fault count lives in the RTC's slow memory behind a marker byte, so what a power
    loss leaves there reads as 0."""
    from drivers.esp32 import watchdog

    made = []

    class WDT:
        def __init__(self, timeout):
            made.append(timeout)
            self.feeds = 0

        def feed(self):
            self.feeds += 1

    class RTC:
        def __init__(self, mem):
            self.mem = mem

        def memory(self, data=None):
            if data is None:
                return self.mem
            self.mem = bytes(data)

    rtc = RTC(b"\x00\x07garbage")
    wd = watchdog.Watchdog(WDT, 8000, board.RESET_WATCHDOG, rtc)
    assert made == [] and wd.reset_cause() == board.RESET_WATCHDOG
    assert wd.fault_boots() == 0
    wd.feed()
    wd.feed()
    assert made == [8000] and wd._wdt.feeds == 2
    wd.set_fault_boots(2)
    assert watchdog.Watchdog(WDT, 8000, board.RESET_WATCHDOG, rtc).fault_boots() == 2
    wd.set_fault_boots(999)
    assert wd.fault_boots() == 255
    assert watchdog.Watchdog(WDT, 8000, board.RESET_POWER, RTC(b"")).fault_boots() == 0


def test_supply_reads_the_vehicle_voltage_through_its_divider():
    """ads1115.Supply: its own ADS1115 in continuous mode on the chosen input; counts -> mV at the divider's
    ratio, 0 for a negative reading."""
    bus = FakeI2C()
    bus.add(0x49, 4)
    sup = ads1115.Supply(bus, 0x49, 0, 2048, 11)
    addr, reg, cfg = bus.writes[0]
    assert (addr, reg) == (0x49, 1)
    assert (cfg[0] >> 4) & 7 == 4  # MUX: AIN0 against ground
    assert cfg[0] & 1 == 0  # continuous conversion
    for counts, mv in ((18327, 12600), (16000, 11000), (0, 0), (-5, 0)):
        raw = counts & 0xFFFF
        bus.mem[0x49][0:2] = bytes((raw >> 8, raw & 0xFF))
        assert abs(sup.millivolts() - mv) <= 11, counts
