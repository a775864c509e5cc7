"""The ESP32 wiring file builds a complete Hardware on a stand-in `machine` and keeps the board's pin rules."""

import importlib
import sys
import time
import types

import pytest

import board as contract
from tests.board_fakes import FakeI2C


def _sdp_frame():
    from drivers.esp32 import sdp810

    out = bytearray()
    for w in (0, 5000, 60):
        pair = bytes([w >> 8, w & 0xFF])
        out += pair + bytes([sdp810.crc8(pair, 0, 2)])
    return out


class _Machine:
    """A stand-in for MicroPython's `machine` module that records what the wiring creates, in order."""

    def __init__(self):
        self.created = []
        self.bus = FakeI2C()
        self.irqs = {}
        self.repl_uart = None  # 0: a stock MicroPython build, whose UART0 is the REPL's
        for addr, size in ((0x48, 4), (0x49, 4), (0x27, 1), (0x68, 0x13), (0x50, 256)):
            self.bus.add(addr, size)
        self.bus.frames[0x25] = [_sdp_frame()]
        m = self
        self.module = mod = types.ModuleType("machine")

        class Pin:
            IN, OUT, PULL_UP, PULL_DOWN, IRQ_RISING, IRQ_FALLING = 1, 3, 2, 4, 1, 2

            def __init__(self, gpio, mode=None, pull=None, value=None):
                self.gpio, self.mode, self.pull, self.level = gpio, mode, pull, value
                self.handler = None
                m.created.append(("Pin", gpio, mode, pull, value))

            def value(self, v=None):
                if v is None:
                    return 1 if self.level is None else self.level
                self.level = v
                m.created.append(("set", self.gpio, v))

            def irq(self, handler=None, trigger=None):
                self.handler = handler
                m.irqs[self.gpio] = (handler, trigger)

        class PWM:
            def __init__(self, pin, freq=None, duty_u16=None):
                self.pin, self.f, self.duty = pin, freq, duty_u16
                m.created.append(("PWM", pin.gpio, freq, duty_u16))

            def duty_u16(self, d):
                self.duty = d

            def freq(self, f):
                self.f = f

        class ADC:
            ATTN_11DB = 3

            def __init__(self, pin, atten=None):
                self.pin, self.atten = pin, atten
                m.created.append(("ADC", pin.gpio, atten))

            def read_uv(self):
                return 1_650_000

        def I2C(bus_id, scl, sda, freq):
            m.created.append(("I2C", bus_id, scl.gpio, sda.gpio, freq))
            return m.bus

        class UART:
            def __init__(self, uart_id, baudrate, tx=None, rx=None, **kw):
                # MicroPython v1.27.0 ports/esp32/machine_uart.c (mp_machine_uart_init_helper): a buffer size
                # for the REPL's UART is refused before anything is set
                if uart_id == m.repl_uart and ("rxbuf" in kw or "txbuf" in kw):
                    raise ValueError("REPL UART buffer size is fixed")
                m.created.append(("UART", uart_id, tx, rx, baudrate))

            def any(self):
                return 0

            def write(self, b):
                return len(b)

            def readinto(self, buf, n=None):
                return None

        class Timer:
            ONE_SHOT = 0

            def __init__(self, timer_id):
                m.created.append(("Timer", timer_id))

            def init(self, **kw):
                pass

            def deinit(self):
                pass

        class WDT:
            def __init__(self, id=0, timeout=5000):
                m.created.append(("WDT", timeout))

            def feed(self):
                pass

        class RTC:
            def __init__(self):
                self.mem = b""

            def memory(self, data=None):
                if data is None:
                    return self.mem
                self.mem = bytes(data)

        mod.Pin, mod.PWM, mod.ADC, mod.I2C, mod.UART, mod.Timer = Pin, PWM, ADC, I2C, UART, Timer
        mod.WDT, mod.RTC = WDT, RTC
        mod.PWRON_RESET, mod.HARD_RESET, mod.WDT_RESET, mod.DEEPSLEEP_RESET, mod.SOFT_RESET = 1, 2, 3, 4, 5
        mod.reset_cause = lambda: 3


def _close(coro):
    """Close a coroutine that never ran, and the task it guards (supervisor.guard's coro) likewise."""
    inner = coro.cr_frame.f_locals.get("coro") if coro.cr_frame is not None else None
    coro.close()
    if inner is not None:
        _close(inner)


# What MicroPython v1.27.0 reports as sys.implementation._machine on each board build (mpconfigboard.h /
# mpconfigvariant_*.cmake), and the chip facts each pin map is checked against.
WROOM32 = "Generic ESP32 module with ESP32"
S3 = "Generic ESP32S3 module with Octal-SPIRAM with ESP32S3"
CHIPS = {
    # ESP32 datasheet / ESP-IDF GPIO page: GPIO 0-19, 21-23, 25-27, 32-39; 6-11 are the flash's; 34-39 are
    # input only; ADC1 is 32-39; UART0 (1/3) is the service port's only. Straps 2, 5, 12, 15 are allowed with
    # the reasons pins_wroom32.py gives (checked below); 0 is not.
    WROOM32: {
        "module": "pins_wroom32",
        "gpios": set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40)),
        "forbidden": {0} | set(range(6, 12)),
        "input_only": set(range(34, 40)),
        "adc1": set(range(32, 40)),
        "uart0": {1, 3},
    },
    # ESP-IDF GPIO page for the ESP32-S3: GPIO 0-21, 26-48; straps 0, 3, 45, 46; USB 19/20 (the REPL's USB CDC);
    # 26-32 flash/PSRAM and 33-37 the octal PSRAM's; ADC1 is 1-10; no input-only pin; UART0 is 43/44.
    S3: {
        "module": "pins_s3",
        "gpios": set(range(0, 22)) | set(range(26, 49)),
        "forbidden": {0, 3, 45, 46, 19, 20} | set(range(26, 38)),
        "input_only": set(),
        "adc1": set(range(1, 11)),
        "uart0": {43, 44},
    },
}


def _load(monkeypatch, machine_name):
    fake = _Machine()
    monkeypatch.setitem(sys.modules, "machine", fake.module)
    # MicroPython's time has sleep_ms and ticks_ms; CPython's does not.
    monkeypatch.setattr(time, "sleep_ms", lambda ms: None, raising=False)
    monkeypatch.setattr(time, "ticks_ms", lambda: 0, raising=False)
    # the board build names its chip here; wiring picks the pin map from it at import
    monkeypatch.setattr(sys.implementation, "_machine", machine_name, raising=False)
    monkeypatch.delitem(sys.modules, "drivers.esp32.wiring", raising=False)
    return importlib.import_module("drivers.esp32.wiring"), fake


@pytest.fixture(params=[WROOM32, S3], ids=["wroom32", "s3"])
def board(request, monkeypatch):
    """The wiring module imported against the stand-in machine on each board build, and the record of what it
    made; wiring.PINS is that board's pin map."""
    wiring, fake = _load(monkeypatch, request.param)
    fake.chip = CHIPS[request.param]
    yield wiring, fake
    sys.modules.pop("drivers.esp32.wiring", None)


def pin_map_problems(wiring, fake):
    """Every way the pins wiring used (build(), service_port(), modem_uart()) break the chip's rules."""
    chip, p = fake.chip, wiring.PINS
    wiring.build()
    wiring.service_port()
    wiring.modem_uart()
    used = [e[1] for e in fake.created if e[0] == "Pin"]  # every Pin, including the I2C, ADC and PWM ones
    outputs = {e[1] for e in fake.created if e[0] == "Pin" and e[2] == 3}
    outputs |= {e[1] for e in fake.created if e[0] == "PWM"}
    outputs |= {p.I2C_SCL, p.I2C_SDA}  # open-drain outputs
    for e in fake.created:
        if e[0] == "UART" and e[2] is not None:
            used += [e[2], e[3]]
            outputs.add(e[2])
    service = [e for e in fake.created if e[0] == "UART" and e[2] is None]
    assert [e[1] for e in service] == [p.SERVICE_UART] == [0]  # UART0, on its own pins
    others = set(used)
    used += [p.SERVICE_TX, p.SERVICE_RX]
    outputs.add(p.SERVICE_TX)
    problems = []
    dup = sorted({g for g in used if used.count(g) > 1})
    if dup:
        problems.append(("used twice", dup))
    for rule, bad in (("not on this chip", set(used) - chip["gpios"]), ("forbidden", set(used) & chip["forbidden"]),
                      ("output on an input-only pin", outputs & chip["input_only"]),
                      ("analog input off ADC1", {e[1] for e in fake.created if e[0] == "ADC"} - chip["adc1"]),
                      ("UART0's pins used otherwise", chip["uart0"] & others),
                      ("service port off UART0's pins", {p.SERVICE_TX, p.SERVICE_RX} - chip["uart0"])):
        if bad:
            problems.append((rule, sorted(bad)))
    return problems


_INTERFACES = {
    "fuel_cell": contract.FuelCell, "flow": contract.BreathFlow, "breath_temp": contract.BreathTemp,
    "hum": contract.HumDetect, "heater": contract.Heater, "ambient": contract.Ambient, "module": contract.ModuleSlot,
    "buttons": contract.Buttons, "display": contract.Display, "relay": contract.Relay, "alarm": contract.Alarm,
    "buzzer": contract.Buzzer, "vehicle": contract.Vehicle, "link": contract.HandsetLink, "rtc": contract.Rtc,
    "camera": contract.Camera, "pump": contract.Pump,
}


def test_build_returns_every_driver(board):
    """build() fills every Hardware slot with the matching driver, leaving fs, modem and service port to others."""
    wiring, _ = board
    hw = wiring.build()
    assert isinstance(hw, contract.Hardware)
    for name, iface in _INTERFACES.items():
        assert isinstance(getattr(hw, name), iface), name
    assert hw.fs is None and hw.modem is None and hw.service_port is None


def test_relay_is_the_first_thing_created_and_starts_open(board):
    """The relay pin is created before anything else, as an output already at its open level."""
    wiring, fake = board
    wiring.build()
    assert fake.created[0] == ("Pin", wiring.PINS.PIN_RELAY, 3, None, 0)
    assert all(entry[2] == 0 for entry in fake.created if entry[0] == "set" and entry[1] == wiring.PINS.PIN_RELAY)


def test_outputs_are_created_at_their_off_level(board):
    """Every output pin is born low and every PWM at zero duty, so nothing pulses while the board boots."""
    wiring, fake = board
    wiring.build()
    outputs = [e for e in fake.created if e[0] == "Pin" and e[2] == 3]
    assert {e[1] for e in outputs} == {wiring.PINS.PIN_RELAY, wiring.PINS.PIN_HEATER, wiring.PINS.PIN_HORN, wiring.PINS.PIN_PUMP}
    assert all(e[4] == 0 for e in outputs)
    assert all(e[3] == 0 for e in fake.created if e[0] == "PWM")


def test_pin_map_keeps_the_chips_rules(board):
    """On each board every pin exists on its chip and serves one purpose, none is a forbidden one (flash, PSRAM,
    USB, the risky straps), analog inputs are ADC1 channels (ADC2 is the radio's), no output sits on an
    input-only pin, and UART0's pins are the service port's alone."""
    wiring, fake = board
    assert pin_map_problems(wiring, fake) == []


@pytest.mark.parametrize("machine_name", [WROOM32, S3], ids=["wroom32", "s3"])
def test_the_pin_check_catches_every_broken_rule(monkeypatch, machine_name):
    """The check above is real: on each board, moving the horn onto each forbidden pin, onto a pin the chip lacks,
    onto a pin used already, or an analog input off ADC1, is reported."""
    chip = CHIPS[machine_name]
    pins = importlib.import_module("drivers.esp32." + chip["module"])
    missing = min(set(range(49)) - chip["gpios"])
    cases = [("PIN_HORN", g, "forbidden") for g in sorted(chip["forbidden"])]
    cases += [("PIN_HORN", missing, "not on this chip"), ("PIN_HORN", pins.PIN_RELAY, "used twice"),
              ("PIN_HUM", min(chip["gpios"] - chip["adc1"] - chip["forbidden"]), "analog input off ADC1"),
              ("PIN_HORN", min(chip["uart0"]), "UART0's pins used otherwise")]
    if chip["input_only"]:
        cases.append(("PIN_HORN", min(chip["input_only"]), "output on an input-only pin"))
    for name, gpio, rule in cases:
        with monkeypatch.context() as m:
            m.setattr(pins, name, gpio)
            wiring, fake = _load(m, machine_name)
            fake.chip = chip
            assert rule in [r for r, _ in pin_map_problems(wiring, fake)], (name, gpio, rule)
        sys.modules.pop("drivers.esp32.wiring", None)


def test_wroom32_straps_are_used_only_as_its_docstring_says(monkeypatch):
    """On the WROOM-32, GPIO 2 (low at reset for serial download) is only an output born low; GPIO 12 (the
    flash-voltage strap, fixed in eFuse on these boards) is only the cable sense, an input with no pull-up, so it
    reads low at reset unless a cable is in."""
    wiring, fake = _load(monkeypatch, WROOM32)
    wiring.build()
    wiring.service_port()
    assert all(e[2] == 3 and e[4] == 0 for e in fake.created if e[0] == "Pin" and e[1] == 2)
    assert [e for e in fake.created if e[0] == "Pin" and e[1] == 12] == [("Pin", 12, 1, None, None)]
    assert "set_flash_voltage 3.3V" in wiring.PINS.__doc__
    sys.modules.pop("drivers.esp32.wiring", None)


def test_s3_uses_no_strap_and_leaves_the_native_usb_alone(monkeypatch):
    """On the S3 no strapping pin (0, 3, 45, 46) and neither USB line (19/20, the REPL's USB CDC) is touched."""
    wiring, fake = _load(monkeypatch, S3)
    wiring.build()
    wiring.service_port()
    wiring.modem_uart()
    touched = {e[1] for e in fake.created if e[0] == "Pin"} | {g for e in fake.created if e[0] == "UART"
                                                                for g in e[2:4] if g is not None}
    assert not touched & {0, 3, 45, 46, 19, 20}
    sys.modules.pop("drivers.esp32.wiring", None)


@pytest.mark.parametrize("machine_name", [
    "Generic ESP32 module with SPIRAM with ESP32",   # a WROVER: PSRAM on GPIO 16/17
    "Generic ESP32C3 module with ESP32C3",
    "linux [GCC 13.2.0] version",                   # the unix port (the benches)
    "",
])
def test_a_build_without_a_pin_map_touches_no_pin(monkeypatch, machine_name):
    """A build with no pin map imports (the benches import wiring off the board), but build(), the service port,
    the modem's UART and the wake-up all refuse before any pin is created."""
    wiring, fake = _load(monkeypatch, machine_name)
    assert wiring.PINS is None
    for call in (wiring.build, wiring.service_port, wiring.modem_uart, lambda: wiring.wake_on_inputs(print)):
        with pytest.raises(RuntimeError, match="no pin map"):
            call()
    assert fake.created == [] and fake.irqs == {}
    sys.modules.pop("drivers.esp32.wiring", None)


def test_each_build_gets_its_own_pin_map(monkeypatch):
    """The MCU name at the end of sys.implementation._machine picks the map, whatever the board name before it."""
    for name, module in ((WROOM32, "pins_wroom32"), (S3, "pins_s3"), ("Generic ESP32 module with OTA with ESP32",
                         "pins_wroom32"), ("Generic ESP32S3 module with ESP32S3", "pins_s3")):
        wiring, _ = _load(monkeypatch, name)
        assert wiring.PINS.__name__ == "drivers.esp32." + module, name
    sys.modules.pop("drivers.esp32.wiring", None)


def test_analog_inputs_are_calibrated_and_input_only_pins_get_no_pulls(board):
    """ADC inputs use 11 dB attenuation; pins without pull resistors (the WROOM-32's 34-39) are not asked for one."""
    wiring, fake = board
    wiring.build()
    assert len([e for e in fake.created if e[0] == "ADC"]) == 3
    assert all(e[0] != "ADC" or e[2] == 3 for e in fake.created)
    for e in fake.created:
        if e[0] == "Pin" and e[1] in fake.chip["input_only"]:
            assert e[3] is None and e[2] in (None, 1)


def test_i2c_bus_and_devices(board):
    """One I2C bus on the board's SDA / SCL at 100 kHz carries the ADC, pressure sensor, LCD, RTC and module
    EEPROM."""
    wiring, fake = board
    hw = wiring.build()
    p = wiring.PINS
    assert ("I2C", p.I2C_ID, p.I2C_SCL, p.I2C_SDA, 100000) in fake.created
    touched = {w[0] for w in fake.bus.writes}
    assert {0x48, 0x25, 0x27} <= touched
    assert len(hw.module.read_eeprom()) == 64
    fake.bus.mem[0x68][0:7] = b"\x00\x00\x00\x01\x01\x01\x24"
    assert hw.rtc.now() == 0


def test_modem_and_service_uarts_are_left_for_their_drivers(board):
    """build() creates only the camera's UART; modem_uart() builds the modem's on its own pins."""
    wiring, fake = board
    wiring.build()
    uarts = [e for e in fake.created if e[0] == "UART"]
    assert uarts == [("UART", wiring.PINS.CAMERA_UART, wiring.PINS.CAMERA_TX, wiring.PINS.CAMERA_RX, wiring.CAMERA_BAUD)]
    wiring.modem_uart()
    assert fake.created[-1] == ("UART", wiring.PINS.MODEM_UART, wiring.PINS.MODEM_TX, wiring.PINS.MODEM_RX, wiring.MODEM_BAUD)


def test_wiring_matches_the_esp32_machine_api(tmp_path):
    """mypy with the micropython-esp32-stubs finds no misuse of machine.Pin/ADC/PWM/I2C/UART/Timer in wiring.py."""
    import pathlib
    import subprocess
    import sysconfig

    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    names = ("machine.pyi", "micropython.pyi", "time.pyi", "esp32.pyi", "vfs.pyi", "_mpy_shed")
    if not all((site / n).exists() for n in names) or not (site / "stdlib" / "VERSIONS").exists():
        pytest.skip("micropython-esp32-stubs / micropython-stdlib-stubs are not installed")
    # The stubs sit loose in site-packages; give mypy just them, with their own stdlib as typeshed.
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for n in names:
        (stubs / n).symlink_to(site / n)
    root = pathlib.Path(__file__).resolve().parent.parent
    wiring = root / "firmware" / "drivers" / "esp32" / "wiring.py"
    env = {"MYPYPATH": f"{stubs}:{root / 'firmware'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--check-untyped-defs", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--custom-typeshed-dir", str(site), str(wiring)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    ours = [line for line in proc.stdout.splitlines() if line.startswith(str(wiring))]
    assert "checked 1 source file" in proc.stdout or "Success" in proc.stdout, proc.stdout + proc.stderr
    assert ours == []


def test_button_sampler_task_catches_a_press_between_runtime_polls(board):
    """The board's sampler task polls the buttons, so a 30 ms press between two runtime polls is reported."""
    wiring, _ = board
    hw = wiring.build()
    pins = hw.buttons._ok
    slept = []

    class _Sleep:
        def __await__(self):
            yield

    def sleep_ms(ms):
        slept.append(ms)
        return _Sleep()

    task = wiring.sample_buttons(hw.buttons, sleep_ms)
    assert hw.buttons.pressed() == 0
    pins.level = 0
    for _ in range(3):                 # 30 ms held at a 10 ms period
        task.send(None)
    pins.level = 1
    for _ in range(3):
        task.send(None)
    task.close()
    assert slept == [wiring.BUTTON_SAMPLE_MS] * 6
    assert hw.buttons.pressed() == contract.OK


def test_inputs_the_runtime_sleeps_through_wake_it(board):
    """Ignition, the three buttons, the handset link and the module latch call the runtime's wake on any edge."""
    wiring, fake = board
    wiring.build()
    woken = []
    wiring.wake_on_inputs(woken.append)
    pins = {wiring.PINS.PIN_IGNITION, wiring.PINS.PIN_LEFT, wiring.PINS.PIN_OK, wiring.PINS.PIN_RIGHT, wiring.PINS.PIN_LINK, wiring.PINS.PIN_LATCH}
    assert pins <= set(fake.irqs)
    for gpio in pins:
        handler, trigger = fake.irqs[gpio]
        assert trigger == 1 | 2
        handler(gpio)
    assert len(woken) == len(pins)


def test_service_port_senses_the_cable_on_its_pin(board):
    """service_port() gives the UART port with the VBUS sense on GPIO 12: connected while it reads high."""
    wiring, fake = board
    port = wiring.service_port()
    assert ("UART", wiring.PINS.SERVICE_UART, None, None, wiring.SERVICE_BAUD) in fake.created
    pin = port._sense
    assert pin.gpio == wiring.PINS.PIN_SERVICE_VBUS
    pin.level = 1
    assert port.connected() is True
    pin.level = 0
    assert port.connected() is False


def test_unplugging_the_service_cable_ends_the_session_on_the_board(board):
    """On the board's port, the service task's pump ends a technician's session once the cable has been out
    for DISCONNECT_MS; a shorter blip keeps it."""
    from service import task
    from service.server import DISCONNECT_MS
    from technician import protocol as p
    from tests.service_sim import Bench

    wiring, _ = board
    port = wiring.service_port()
    pin = port._sense
    b = Bench(lockout=False)
    buf = bytearray(64)
    pin.level = 1
    b.login()
    assert b.tech_id == 17

    def pump_for(ms):
        for _ in range(ms // 10):
            task.pump(b.svc, port, b.now, buf)
            b.run(10)

    pin.level = 0
    pump_for(DISCONNECT_MS - 100)
    pin.level = 1
    pump_for(100)
    assert b.tech_id == 17 and b.req(p.Status()).status
    pin.level = 0
    pump_for(DISCONNECT_MS + 50)
    assert b.tech_id == 0
    pin.level = 1
    pump_for(50)
    assert b.req(p.Status()).rc == 11  # the next person at the port finds no session


def test_main_serves_the_port_with_its_cable_sense(board, monkeypatch):
    """The board's main.py hands the service task the port built by wiring.service_port(), with its sense."""
    import asyncio
    import runpy
    from pathlib import Path

    import storage
    from drivers import simcom
    from drivers.serialport import UartPort
    from service import task
    from storage.memory import MemoryLog, MemoryState

    wiring, _ = board
    started = {}

    def start(runtime, log, port, clock, entropy, reset=None, alive=None, ble=None):
        started["port"] = port
        started["ble"] = ble

        async def idle():
            return None

        return idle()

    def run(coro):
        # the runtime's loop and the tasks it was given are never started: close them all
        for t in coro.cr_frame.f_locals["tasks"]:
            _close(t)
        coro.close()

    class Modem:
        def __init__(self, uart, base):
            pass

    monkeypatch.setattr(task, "start", start)
    monkeypatch.setattr(asyncio, "run", run)
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(ms / 1000), raising=False)
    monkeypatch.setattr(storage, "on_flash", lambda flash: (MemoryLog(), MemoryState()))
    monkeypatch.setattr(simcom, "SimcomModem", Modem)
    machine = sys.modules["machine"]
    monkeypatch.setattr(machine, "reset", lambda: None, raising=False)
    main = Path(__file__).resolve().parents[1] / "firmware" / "main.py"
    runpy.run_path(str(main), run_name="board_main")
    port = started["port"]
    assert callable(started["ble"])  # the BLE service port shares the server
    assert isinstance(port, UartPort) and port._sense is not None
    assert port._sense.gpio == wiring.PINS.PIN_SERVICE_VBUS and port._active == wiring.SERVICE_VBUS_ACTIVE


def test_main_keeps_the_repl_off_the_service_port(board, monkeypatch):
    """The service port is UART0, MicroPython's REPL stream: main.py turns off Ctrl-C (0x03 on the cable would
    otherwise end the program and leave a Python prompt on the port) before it serves, and should the loop ever
    end, by an exception or otherwise, it resets the board instead of falling back to that prompt."""
    import asyncio
    import runpy
    from pathlib import Path

    import micropython

    import storage
    from drivers import simcom
    from service import task
    from storage.memory import MemoryLog, MemoryState

    calls = []
    monkeypatch.setattr(micropython, "kbd_intr", lambda ch: calls.append(("kbd_intr", ch)), raising=False)

    def start(runtime, log, port, clock, entropy, reset=None, alive=None, ble=None):
        calls.append(("serve",))

        async def idle():
            return None

        return idle()

    def run(coro):
        for t in coro.cr_frame.f_locals["tasks"]:
            _close(t)
        coro.close()
        raise KeyboardInterrupt  # what a 0x03 on UART0 raises while Ctrl-C is on

    class Modem:
        def __init__(self, uart, base):
            pass

    monkeypatch.setattr(task, "start", start)
    monkeypatch.setattr(asyncio, "run", run)
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(ms / 1000), raising=False)
    monkeypatch.setattr(storage, "on_flash", lambda flash: (MemoryLog(), MemoryState()))
    monkeypatch.setattr(simcom, "SimcomModem", Modem)
    machine = sys.modules["machine"]
    monkeypatch.setattr(machine, "reset", lambda: calls.append(("reset",)), raising=False)
    main = Path(__file__).resolve().parents[1] / "firmware" / "main.py"
    with pytest.raises(KeyboardInterrupt):
        runpy.run_path(str(main), run_name="board_main")
    assert calls[0] == ("kbd_intr", -1) and ("serve",) in calls and calls[-1] == ("reset",), calls


def test_a_stock_build_gives_no_serial_service_port(board):
    """On a stock ESP32_GENERIC / ESP32_GENERIC_S3 build UART0 is the REPL's and MicroPython refuses its rxbuf
    (ValueError): service_port() gives None instead of raising, and opens no UART."""
    wiring, fake = board
    fake.repl_uart = 0
    assert wiring.service_port() is None
    assert not [e for e in fake.created if e[0] == "UART"]
    fake.repl_uart = None
    assert wiring.service_port() is not None  # the handset's own build (tools/board/): UART0 is free


def _run_main(monkeypatch, started):
    """Run firmware/main.py on the stand-in machine, the service task's start() recording its arguments."""
    import asyncio
    import runpy
    from pathlib import Path

    import storage
    from drivers import simcom
    from service import task
    from storage.memory import MemoryLog, MemoryState

    def start(runtime, log, port, clock, entropy, reset=None, alive=None, ble=None):
        started.update(runtime=runtime, log=log, port=port, ble=ble)

        async def idle():
            return None

        return idle()

    def run(coro):
        for t in coro.cr_frame.f_locals["tasks"]:
            _close(t)
        coro.close()
        started["ran"] = True

    class Modem:
        def __init__(self, uart, base):
            pass

    monkeypatch.setattr(task, "start", start)
    monkeypatch.setattr(asyncio, "run", run)
    monkeypatch.setattr(asyncio, "sleep_ms", lambda ms: asyncio.sleep(ms / 1000), raising=False)
    monkeypatch.setattr(storage, "on_flash", lambda flash: (MemoryLog(), MemoryState()))
    monkeypatch.setattr(simcom, "SimcomModem", Modem)
    machine = sys.modules["machine"]
    monkeypatch.setattr(machine, "reset", lambda: started.setdefault("reset", True), raising=False)
    main = Path(__file__).resolve().parents[1] / "firmware" / "main.py"
    runpy.run_path(str(main), run_name="board_main")


def test_main_on_a_stock_build_runs_without_the_serial_port(board, monkeypatch):
    """A stock build (UART0 the REPL's) must not boot-loop: main.py still builds everything and runs the loop,
    the service task gets no serial port (and keeps its BLE port), and the relay was never closed."""
    _, fake = board
    fake.repl_uart = 0
    started = {}
    _run_main(monkeypatch, started)
    assert started.get("ran") and started["port"] is None and callable(started["ble"])
    relay_pin = fake.created[0]
    assert relay_pin[:2] == ("Pin", board[0].PINS.PIN_RELAY)
    assert ("set", board[0].PINS.PIN_RELAY, 1) not in fake.created


def test_the_service_task_without_a_serial_port_records_it_and_serves_ble():
    """port None (a stock build): the service task records FAULT_SERVICE_PORT once, starts the BLE task on its
    server and keeps running (reporting progress), reading nothing; the state machine's state is untouched."""
    import asyncio

    from fsm import records
    from service import task
    from tests.service_sim import Counter, locked_sim

    sim, log = locked_sim(lockout=False)
    before, first = sim.fsm.status(), log.next_seq()

    class Runtime:
        fsm = sim.fsm

    beats, served = [], []

    async def ble(service):
        served.append(service)

    async def scenario():
        t = asyncio.ensure_future(task.start(Runtime(), log, None, lambda: 0, Counter(),
                                             alive=lambda: beats.append(1), ble=ble))
        for _ in range(5):
            await asyncio.sleep(0.01)
        done = t.done()
        t.cancel()
        return done

    assert asyncio.run(scenario()) is False, "the service task ended"
    recs = [log.read(s) for s in range(first, log.next_seq())]
    assert [(r[2], r[3]) for r in recs] == [(records.FAULT, records.FAULT_SERVICE_PORT)]
    assert recs[0][1] == sim.fsm.wall
    assert len(served) == 1 and len(beats) >= 2
    after = sim.fsm.status()
    assert after.pop("log_next_seq") == before.pop("log_next_seq") + 1 and after == before
