"""MicroPython: heap bytes allocated per call of each ESP32 board driver's read/act path, over fake buses
that themselves allocate nothing. Target 0 everywhere. Run by bench/board.py."""

import gc
import sys

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
    vehicle,
)

_N = 200


class Bus:
    """I2C stand-in copying byte by byte from preallocated memories (no allocation of its own)."""

    def __init__(self):
        self.mem = {}
        self.frame = bytearray(9)
        self.writes = 0
        for addr in (0x48, 0x27, 0x68, 0x50):
            self.mem[addr] = bytearray(256)

    def readfrom_mem_into(self, addr, reg, buf):
        m = self.mem[addr]
        for i in range(len(buf)):
            buf[i] = m[reg + i]

    def writeto_mem(self, addr, reg, buf):
        m = self.mem[addr]
        for i in range(len(buf)):
            m[reg + i] = buf[i]

    def writeto(self, addr, buf):
        self.writes += 1

    def readfrom_into(self, addr, buf):
        f = self.frame
        for i in range(len(buf)):
            buf[i] = f[i]


class Pin:
    """Pin stand-in."""

    IRQ_RISING = 1

    def __init__(self, level=1):
        self.level = level
        self.handler = None

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v

    def irq(self, handler=None, trigger=None):
        self.handler = handler


class ADC:
    """ADC stand-in."""

    def __init__(self, uv):
        self.uv = uv

    def read_uv(self):
        return self.uv


class PWM:
    """PWM stand-in."""

    def __init__(self):
        self.duty = 0

    def duty_u16(self, d):
        self.duty = d

    def freq(self, f):
        pass


class Timer:
    """One-shot timer stand-in; fire() runs the callback."""

    ONE_SHOT = 0

    def __init__(self):
        self.cb = None

    def init(self, mode=0, period=0, callback=None):
        self.cb = callback

    def deinit(self):
        self.cb = None

    def fire(self):
        cb = self.cb
        self.cb = None
        if cb is not None:
            cb(self)


class Clock:
    """ticks_ms stand-in advancing 50 ms per call."""

    def __init__(self):
        self.t = 0x3FFFFFFF - 1000

    def now(self):
        # Wraps at 2**30 like ticks_ms without forming 2**30 (a big int on a 32-bit port).
        t = self.t
        self.t = t + 50 if t < 0x3FFFFFFF - 49 else t - (0x3FFFFFFF - 49)
        return self.t


def measure(name, fn):
    """Print the bytes allocated by _N calls of fn after one warm-up call."""
    fn()
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(_N):
        fn()
    after = gc.mem_alloc()
    gc.enable()
    print(f"{name:<28} {after - before:6d} bytes / {_N} calls")
    return after - before


def main():
    """Build every driver over the fakes and measure its hot path."""
    bus = Bus()
    f = bus.frame
    f[0], f[1] = 0x17, 0x70                       # 6000 counts = 100 Pa
    f[2] = sdp810.crc8(f, 0, 2)
    f[3], f[4] = 0x13, 0x88
    f[5] = sdp810.crc8(f, 3, 2)
    f[6], f[7] = 0, 60
    f[8] = sdp810.crc8(f, 6, 2)
    bus.mem[0x68][0:7] = b"\x30\x15\x10\x03\x22\x11\x26"
    bus.mem[0x68][0x11] = 21

    cell = ads1115.FuelCell(bus)
    flow = sdp810.BreathFlow(bus)
    breath = ntc.NTC(ADC(1400000))
    tone = hum.HumDetect(ADC(700000))
    heat = heater.Heater(Pin(0), ntc.NTC(ADC(1500000)))
    amb = ds3231.Ambient(bus)
    rtc = ds3231.DS3231(bus)
    module = slot.ModuleSlot(Pin(0), bus)
    keys = buttons.Buttons(Pin(1), Pin(0), Pin(1))
    disp = hd44780.Display(bus, sleep_ms=lambda ms: None)
    rel = relay.Relay(Pin(0))
    alm = alarm.Alarm(Pin(0), PWM())
    btimer = Timer()
    bz = buzzer.Buzzer(PWM(), btimer)
    clock = Clock()
    wpin = Pin(0)
    veh = vehicle.Vehicle(Pin(1), wpin, clock.now)
    lk = link.HandsetLink(Pin(0))
    ptimer = Timer()
    pmp = pump.Pump(Pin(0), ptimer)
    text_a = b"BLOW            RETEST - BLOW   "
    text_b = b"BLOW HARDER     RETEST - BLOW   "
    state = [0]

    def show_changing():
        state[0] ^= 1
        disp.show(text_a if state[0] else text_b)

    def beep():
        bz.beep(board.BEEP_PROMPT)
        while btimer.cb is not None:
            btimer.fire()

    def draw():
        pmp.draw()
        ptimer.fire()

    def engine():
        wpin.handler(wpin)
        veh.engine_running()

    total = 0
    for name, fn in (
        ("empty call (baseline)", lambda: None),
        ("FuelCell.read", cell.read),
        ("BreathFlow.read", flow.read),
        ("NTC.read (breath)", breath.read),
        ("HumDetect.read", tone.read),
        ("Heater.set", lambda: heat.set(True)),
        ("Heater.temperature", heat.temperature),
        ("Ambient.read", amb.read),
        ("DS3231.now", rtc.now),
        ("ModuleSlot.present", module.present),
        ("ModuleSlot.read_eeprom", module.read_eeprom),
        ("Buttons.pressed", keys.pressed),
        ("Display.show (same text)", lambda: disp.show(text_a)),
        ("Display.show (one word)", show_changing),
        ("Relay.set", lambda: rel.set(False)),
        ("Alarm.horn", lambda: alm.horn(True)),
        ("Alarm.lights", lambda: alm.lights(True)),
        ("Buzzer.beep (whole pattern)", beep),
        ("Pump.draw (whole pulse)", draw),
        ("Vehicle pulse+engine_running", engine),
        ("Vehicle.ignition", veh.ignition),
        ("HandsetLink.connected", lk.connected),
    ):
        got = measure(name, fn)
        if name.startswith("empty"):
            continue
        total += got
    print(f"total over all hot paths: {total} bytes")
    print("interpreter:", sys.implementation.name)


main()
