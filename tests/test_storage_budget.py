"""The flash budget: a year of a typical program fits in the 2 MiB littlefs partition without any upload."""

import math

import pytest

from fsm import records as R
from host_sim.flash import BLOCK_SIZE, BLOCKS, LfsFlash
from interlock import record
from storage.log import FlashLog

# A typical drive, record by record, from the record types in fsm/records.py: a start test, two rolling
# retests (first at 5-15 min, then every 15-45 min of a ~40 min drive), one aborted blow, and the state changes
# around each test.
DRIVE = (
    [R.IGNITION, R.STATE, R.TEST_REQUEST, R.STATE, R.ABORT, R.STATE, R.RESULT, R.STATE, R.ENGINE, R.STATE]
    + 2 * [R.TEST_REQUEST, R.STATE, R.STATE, R.RESULT, R.RETEST, R.STATE]
    + [R.ENGINE, R.IGNITION, R.STATE]
)
DRIVES_PER_DAY = 4
DAILY = [R.SYNC, R.SYNC, R.CLOCK]  # two syncs a day and a clock set
MONTHLY = [R.SERVICE, R.SERVICE, R.MODULE, R.MODULE, R.POLICY, R.INSPECTION, R.PAYMENT, R.PAYMENT]
PER_YEAR = 365 * (DRIVES_PER_DAY * len(DRIVE) + len(DAILY)) + 12 * len(MONTHLY)
PARTITION_BLOCKS = BLOCKS  # 2 MiB: the esp32 4 MiB layout's vfs partition
FIRMWARE_BLOCKS = 40  # .mpy files of the firmware (about 100 KiB today) with room to grow
LOG = FlashLog.__init__.__defaults__  # (root, seg_records, capacity, reserve, retention)
SEG_RECORDS, CAPACITY, RESERVE = LOG[1], LOG[2], LOG[3]


def test_a_typical_drive_is_within_the_estimate():
    """A typical drive logs 15-30 records (25 here) and a year is about 37,700 records."""
    assert 15 <= len(DRIVE) <= 30
    assert 35000 <= PER_YEAR <= 38000


def test_capacity_holds_a_year_and_fits_the_partition_by_calculation():
    """A year plus the reserve is within capacity, and capacity in one-block segments fits the partition."""
    assert PER_YEAR + RESERVE <= CAPACITY
    assert record.HEADER_SIZE + SEG_RECORDS * record.SIZE <= BLOCK_SIZE  # a full segment is one block
    segments = math.ceil(CAPACITY / SEG_RECORDS)
    metadata = 2 * math.ceil(segments / 50) + 2  # directory pairs, about 50 entries per 4 KiB pair (generous)
    spare = 8  # copy-on-write of the tail block and the state file
    state = 2
    assert segments + metadata + spare + state + FIRMWARE_BLOCKS <= PARTITION_BLOCKS


@pytest.mark.slow
def test_a_year_without_upload_fits_on_the_real_filesystem():
    """A year of typical records written through FlashLog into the 2 MiB image fits, beside the firmware."""
    fl = LfsFlash.fresh(PARTITION_BLOCKS)
    for i in range(FIRMWARE_BLOCKS - 2):  # firmware files: one block each, the worst packing
        fl.write(f"/fw{i:02d}.mpy", bytes(BLOCK_SIZE - 100))
    log = FlashLog(fl)
    wall = 0
    day = DRIVES_PER_DAY * DRIVE + DAILY
    n = 0
    while n < PER_YEAR:
        for rtype in day:
            log.append(wall, rtype, n, 0, 0, 0)
            n += 1
        wall += 86400
    assert not log.nearly_full()
    used = fl.fs.used_block_count
    print(f"\nyear of records: {n}, blocks used {used} of {PARTITION_BLOCKS} (firmware {FIRMWARE_BLOCKS - 2})")
    assert used <= PARTITION_BLOCKS - 16  # room left for state copies and copy-on-write
    assert log.verify()[:2] == (True, n)
