"""Horn output on a pin and hazard lights flashed by a 1 Hz PWM, so no Python timing is involved."""

from micropython import const

import board

_HALF = const(32768)


class Alarm(board.Alarm):
    """Horn relay on a pin; lights relay on a PWM channel already set to its flash rate by the wiring."""

    def __init__(self, horn, lights):
        self._horn = horn
        self._lights = lights
        horn.value(0)
        lights.duty_u16(0)

    def horn(self, on):
        """Sound or silence the horn."""
        self._horn.value(1 if on else 0)

    def lights(self, on):
        """Flash (50 % duty at the PWM's rate) or stop flashing the lights."""
        self._lights.duty_u16(_HALF if on else 0)
