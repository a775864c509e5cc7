"""BrAC from the fuel-cell response: area above baseline, two-point calibration, temperature compensation.

All integer: areas in counts x 50 ms samples, BrAC in thousandths of g/dL, temperatures in deci-degrees C.
A fuel cell's sensitivity rises about 1.5 % per degree C; the module was calibrated at cal_temp, so the
reading is divided by the sensitivity at the temperature it was taken at.
"""

from micropython import const

# sensitivity change per deci-degree, in 1/10000 (1.5 % per degree C)
TEMP_COEFF = const(15)


def compute(area, module, cell_temp):
    """BrAC for an area measured at cell_temp with the module's calibration; never negative."""
    span = module.ref_area - module.zero_area
    net = area - module.zero_area
    if net <= 0 or span <= 0:
        return 0
    raw = (net * module.ref_brac * 2 + span) // (span * 2)
    denom = 10000 + TEMP_COEFF * (cell_temp - module.cal_temp)
    if denom < 5000:
        denom = 5000
    return (raw * 10000 + denom // 2) // denom
