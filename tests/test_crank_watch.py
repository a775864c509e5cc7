"""power.CrankWatch: a start seen from the supply alone (the starter's sag, then the alternator's charge), and the
supplies that must not look like one: a charger, a charger's clamp taken off and put back, a weak battery's crank
that does not start, a brown-out, a charge that stops short. Readings come every 250 ms (a poll with the ignition
on), starting just before the tick counter wraps."""

import pytest

import power
from interlock import timebase

POLL = 250
T0 = timebase.TICKS_PERIOD - 3000


def run(profile):
    """profile: (mV, ms held) pairs; the ms (from the first reading) of each reading the watch called a start."""
    w = power.CrankWatch()
    t = T0
    elapsed = 0
    starts = []
    for mv, held in profile:
        for _ in range(held // POLL):
            if w.update(t, mv):
                starts.append(elapsed)
            t = timebase.add(t, POLL)
            elapsed += POLL
    return starts


REST = (12600, 2000)


def test_a_crank_then_a_charge_is_one_start_when_the_charge_has_held():
    starts = run([REST, (10000, 1000), (14200, 10000)])
    assert starts == [3000 + power.CHARGE_HOLD_MS]


def test_a_second_crank_after_one_that_did_not_start():
    assert len(run([REST, (10000, 1000), (12400, 2000), (9900, 1000), (14200, 6000)])) == 1


def test_a_charger_is_no_start():
    assert run([REST, (14400, 20000)]) == []


def test_a_chargers_clamp_off_and_on_is_no_start():
    # 14.4 -> 12.6 is a drop of 1.8 V, but not under a resting battery's 12.0 V
    assert run([REST, (14400, 5000), (12600, 500), (14400, 10000)]) == []


def test_a_jump_pack_lifting_a_flat_battery_is_no_start():
    assert run([(11000, 2000), (14800, 20000)]) == []


def test_a_crank_that_does_not_start_and_a_charger_after_it():
    assert run([(11900, 2000), (9300, 1000), (11900, 6000), (14400, 10000)]) == []


def test_the_charge_must_follow_the_sag_within_charge_within_ms():
    assert len(run([REST, (10000, 1000), (12600, power.CHARGE_WITHIN_MS - POLL), (14200, 6000)])) == 1
    assert run([REST, (10000, 1000), (12600, power.CHARGE_WITHIN_MS + POLL), (14200, 6000)]) == []


def test_a_charge_that_stops_short_is_no_start():
    assert run([REST, (10000, 1000), (14200, power.CHARGE_HOLD_MS), (12600, 2000)]) == []


@pytest.mark.parametrize("sag_ms, start", [(power.CRANK_MAX_MS, True), (power.CRANK_MAX_MS + 2 * POLL, False)])
def test_a_sag_longer_than_a_crank_is_a_brown_out(sag_ms, start):
    assert bool(run([REST, (10000, sag_ms), (14400, 10000)])) is start


@pytest.mark.parametrize("low, start", [(12600 - power.CRANK_DROP_MV, True), (12600 - power.CRANK_DROP_MV + 1, False)])
def test_the_sag_is_crank_drop_mv_under_the_resting_level(low, start):
    assert bool(run([REST, (low, 1000), (14200, 6000)])) is start


def test_the_sag_is_under_warn_mv():
    # a charger on (14.4 V) and a drop to exactly 12.0 V: not under a resting battery's level
    assert run([(14400, 2000), (power.WARN_MV, 1000), (14200, 6000)]) == []
    assert len(run([(14400, 2000), (power.WARN_MV - 1, 1000), (14200, 6000)])) == 1


def test_no_reading_is_ignored():
    assert len(run([REST, (0, 1000), (10000, 1000), (0, 500), (14200, 6000)])) == 1
    assert run([REST, (0, 500), (14400, 10000)]) == []  # not a sag
