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


@pytest.fixture()
def board(monkeypatch):
    """The wiring module imported against the stand-in machine, and the record of what it made."""
    fake = _Machine()
    monkeypatch.setitem(sys.modules, "machine", fake.module)
    # MicroPython's time has sleep_ms and ticks_ms; CPython's does not.
    monkeypatch.setattr(time, "sleep_ms", lambda ms: None, raising=False)
    monkeypatch.setattr(time, "ticks_ms", lambda: 0, raising=False)
    monkeypatch.delitem(sys.modules, "drivers.esp32.wiring", raising=False)
    wiring = importlib.import_module("drivers.esp32.wiring")
    yield wiring, fake
    sys.modules.pop("drivers.esp32.wiring", None)


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
    assert fake.created[0] == ("Pin", wiring.PIN_RELAY, 3, None, 0)
    assert all(entry[2] == 0 for entry in fake.created if entry[0] == "set" and entry[1] == wiring.PIN_RELAY)


def test_outputs_are_created_at_their_off_level(board):
    """Every output pin is born low and every PWM at zero duty, so nothing pulses while the board boots."""
    wiring, fake = board
    wiring.build()
    outputs = [e for e in fake.created if e[0] == "Pin" and e[2] == 3]
    assert {e[1] for e in outputs} == {wiring.PIN_RELAY, wiring.PIN_HEATER, wiring.PIN_HORN, wiring.PIN_PUMP}
    assert all(e[4] == 0 for e in outputs)
    assert all(e[3] == 0 for e in fake.created if e[0] == "PWM")


def test_no_gpio_is_used_twice_or_forbidden(board):
    """Each GPIO serves one purpose; flash, USB-serial and risky boot-strap pins are left alone."""
    wiring, fake = board
    wiring.build()
    wiring.service_port()
    used = [e[1] for e in fake.created if e[0] == "Pin"]
    for name in ("MODEM_TX", "MODEM_RX"):
        used.append(getattr(wiring, name))
    assert len(used) == len(set(used)), sorted(used)
    assert not set(used) & {0, 1, 3, 6, 7, 8, 9, 10, 11}
    # GPIO 2 must be low at reset for serial download: only an output born low may use it.
    assert all(e[2] == 3 and e[4] == 0 for e in fake.created if e[0] == "Pin" and e[1] == 2)
    # GPIO 12 (the flash-voltage strap, fixed in eFuse on these boards) is only the cable sense: an input
    # with no pull-up, so it reads low at reset unless a cable is in
    assert [e for e in fake.created if e[0] == "Pin" and e[1] == 12] == [("Pin", 12, 1, None, None)]
    assert "set_flash_voltage 3.3V" in wiring.__doc__


def test_analog_inputs_are_on_adc1_and_input_only_pins_get_no_pulls(board):
    """ADC pins are ADC1 channels (ADC2 is the radio's); GPIO 34-39 have no pull resistors to ask for."""
    wiring, fake = board
    wiring.build()
    adc_pins = [e[1] for e in fake.created if e[0] == "ADC"]
    assert len(adc_pins) == 3 and set(adc_pins) <= {32, 33, 34, 35, 36, 37, 38, 39}
    assert all(e[0] != "ADC" or e[2] == 3 for e in fake.created)
    for e in fake.created:
        if e[0] == "Pin" and e[1] >= 34:
            assert e[3] is None and e[2] in (None, 1)


def test_i2c_bus_and_devices(board):
    """One I2C bus on SDA 21 / SCL 22 at 100 kHz carries the ADC, pressure sensor, LCD, RTC and module EEPROM."""
    wiring, fake = board
    hw = wiring.build()
    assert ("I2C", 0, 22, 21, 100000) in fake.created
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
    assert uarts == [("UART", wiring.CAMERA_UART, wiring.CAMERA_TX, wiring.CAMERA_RX, wiring.CAMERA_BAUD)]
    wiring.modem_uart()
    assert fake.created[-1] == ("UART", wiring.MODEM_UART, wiring.MODEM_TX, wiring.MODEM_RX, wiring.MODEM_BAUD)


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
    pins = {wiring.PIN_IGNITION, wiring.PIN_LEFT, wiring.PIN_OK, wiring.PIN_RIGHT, wiring.PIN_LINK, wiring.PIN_LATCH}
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
    assert ("UART", wiring.SERVICE_UART, None, None, wiring.SERVICE_BAUD) in fake.created
    pin = port._sense
    assert pin.gpio == wiring.PIN_SERVICE_VBUS
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
    assert port._sense.gpio == wiring.PIN_SERVICE_VBUS and port._active == wiring.SERVICE_VBUS_ACTIVE


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
