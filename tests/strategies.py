"""Shared Hypothesis strategies for the world's actions on a simulated handset."""

from hypothesis import strategies as st

import presets
from interlock import timebase

# BrAC in thousandths: mostly sober, some around the warn and fail levels, some drunk
bracs = st.one_of(st.just(0), st.integers(0, 9), st.integers(10, 25), st.integers(20, 150))
# a driver asked for a test: mostly sober, sometimes over the fail level
test_bracs = st.sampled_from([0, 0, 0, 5, 12, 45])
volumes = st.integers(500, 4000)  # mL
blow_durations = st.integers(500, 8000)  # ms
# a weak blow: its flow hovers around the 150 mL/s minimum for a few seconds
weak_flows = st.integers(140, 170)  # mL/s
breath_temps = st.integers(200, 370)  # deci C
short_waits = st.integers(50, 20_000)  # ms
medium_waits = st.integers(20_000, 10 * 60_000)
long_waits = st.integers(10 * 60_000, 8 * 3_600_000)
cut_lengths = st.one_of(st.integers(0, 3 * 60_000), st.integers(3 * 60_000, 30 * 60_000))  # ms without power
tick_starts = st.one_of(st.just(timebase.TICKS_PERIOD - 20_000), st.integers(0, timebase.TICKS_PERIOD - 1))
rtc_jumps = st.integers(-86_400 * 3, 86_400 * 3)
# how a property-test example opens (then the random actions follow), and how a lockout is cleared. Hypothesis
# draws the first element more often than the others (it is where shrinking leads), so the first elements are
# the openings that reach the most: a drive, a lockout and a code.
openings = st.sampled_from(["drive, lock out", "drive", "lock out", "drive, lock out", "nothing"])
clears = st.sampled_from(["code", "wrong code", "code", "remote", "technician"])
seeds = st.integers(0, 2**31 - 1)
ambients = st.integers(-400, 400)  # deci C

# the policy a handset runs: the factory defaults (None) or a state's preset (presets/data), pushed as the
# companion pushes it
jurisdictions = st.sampled_from([None, *presets.all_presets()])
