"""The replaceable sensor module's EEPROM image: serial, expiry and its two-point calibration.

Layout (big-endian, 32 bytes): magic "IM", format 1, reserved, serial u32, expiry day u16, zero area i32,
reference area i32, reference BrAC u16, calibration temperature i16 (deci C), calibration day u16, reserved
u16 x 3, CRC-16/XMODEM u16 over the first 30 bytes. Areas are fuel-cell counts above baseline summed over
the analysis window in 50 ms samples, as the firmware measures them.
"""

import struct

from micropython import const

_FMT = ">2sBBIHiiHhHHHH"
SIZE = const(32)
_BODY = const(30)


def crc16(data, n):
    """CRC-16/XMODEM (poly 0x1021, init 0) of the first n bytes of data."""
    crc = 0
    for i in range(n):
        crc ^= data[i] << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class ModuleData:
    """A module's identity and calibration, as read from its EEPROM."""

    def __init__(self, serial, expiry_day, zero_area, ref_area, ref_brac, cal_temp, cal_day):
        self.serial = serial
        self.expiry_day = expiry_day
        self.zero_area = zero_area
        self.ref_area = ref_area
        self.ref_brac = ref_brac
        self.cal_temp = cal_temp
        self.cal_day = cal_day


def parse(image):
    """ModuleData from an EEPROM image, or None if it is short, foreign, corrupt or nonsensical."""
    if image is None or len(image) < SIZE:
        return None
    if crc16(image, _BODY) != (image[_BODY] << 8 | image[_BODY + 1]):
        return None
    magic, fmt, _r, serial, expiry, zero, ref, ref_brac, cal_temp, cal_day, _a, _b, _c = struct.unpack(
        _FMT, bytes(image[:_BODY])
    )
    if magic != b"IM" or fmt != 1 or ref <= zero or ref_brac <= 0:
        return None
    return ModuleData(serial, expiry, zero, ref, ref_brac, cal_temp, cal_day)


def encode(data):
    """The 32-byte EEPROM image of a ModuleData (the factory and the technician write this)."""
    buf = bytearray(
        struct.pack(_FMT, b"IM", 1, 0, data.serial, data.expiry_day, data.zero_area, data.ref_area,
                    data.ref_brac, data.cal_temp, data.cal_day, 0, 0, 0) + b"\x00\x00"
    )
    crc = crc16(buf, _BODY)
    buf[_BODY] = crc >> 8
    buf[_BODY + 1] = crc & 0xFF
    return bytes(buf)
