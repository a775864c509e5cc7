"""Shared Hypothesis strategies for the world's actions on a simulated handset."""

from hypothesis import strategies as st

from fsm import timebase

# BrAC in thousandths: mostly sober, some around the warn and fail levels, some drunk
bracs = st.one_of(st.just(0), st.integers(0, 9), st.integers(10, 25), st.integers(20, 150))
volumes = st.integers(500, 4000)  # mL
blow_durations = st.integers(500, 8000)  # ms
breath_temps = st.integers(200, 370)  # deci C
short_waits = st.integers(50, 20_000)  # ms
medium_waits = st.integers(20_000, 10 * 60_000)
long_waits = st.integers(10 * 60_000, 8 * 3_600_000)
tick_starts = st.one_of(st.just(timebase.TICKS_PERIOD - 20_000), st.integers(0, timebase.TICKS_PERIOD - 1))
rtc_jumps = st.integers(-86_400 * 3, 86_400 * 3)
seeds = st.integers(0, 2**31 - 1)
ambients = st.integers(-400, 400)  # deci C
