"""One poll's worth of readings, filled in place by the runtime and handed to the state machine."""


class Inputs:
    """Everything the state machine reads; one instance, allocated once, overwritten every poll."""

    def __init__(self):
        self.ignition = False
        self.engine = False
        self.connected = True
        self.buttons = 0  # bitmask of presses since the last poll (board.LEFT | OK | RIGHT)
        self.flow = 0  # mL/s, negative when inhaling
        self.breath_temp = 200  # deci-degrees C
        self.hum = 0
        self.cell = 0  # fuel-cell ADC counts
        self.cell_temp = 200  # deci-degrees C of the heated cell block
        self.ambient = 200  # deci-degrees C
        self.rtc = 0  # device seconds from the RTC (refreshed by the runtime about once a second)
        self.module_present = False  # inserted and latched
        self.module = None  # fsm.module.ModuleData parsed from its EEPROM, or None when unreadable
        self.charging = False  # the supply reads an alternator's charge (power.CHARGING_MV; the previous poll's)
        # the supply showed a start's signature, a crank sag then a sustained charge (power.CrankWatch; set for the
        # one poll after the reading that completed it)
        self.supply_start = False
        self.cranking = False  # a crank sag was seen, whether a start follows is not decided yet (the previous poll's)
