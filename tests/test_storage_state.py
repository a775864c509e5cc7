"""The persistent state store: atomic save, checked load, fail-safe None."""

import pytest

from host_sim.flash import LfsFlash, SimFlash
from storage.state import FileState, PairState

STORES = [FileState, PairState]


def _reboot(st):
    """The same store after a reboot on a copy of the chip."""
    return type(st)(LfsFlash(SimFlash(image=st.flash.dev.image())))


@pytest.mark.parametrize("cls", STORES)
def test_missing_state_loads_as_none(cls):
    """A fresh chip has no state: load() is None so the firmware fails safe."""
    assert cls(LfsFlash.fresh(16)).load() is None


@pytest.mark.parametrize("cls", STORES)
def test_saved_bytes_come_back_after_reboot(cls):
    """The last save is what load() returns after a reboot, for any length including empty."""
    st = cls(LfsFlash.fresh(16))
    for data in (b"lock=3", b"", bytes(range(256)) * 3, b"final"):
        st.save(data)
        assert _reboot(st).load() == data
    again = _reboot(st)
    assert again.load() == b"final" and again.generation() == 4


@pytest.mark.parametrize("cls", STORES)
def test_generation_counts_saves_across_reboots(cls):
    """Each save increments the generation, continuing after a reboot."""
    st = cls(LfsFlash.fresh(16))
    st.save(b"a")
    st.save(b"b")
    again = _reboot(st)
    assert again.load() == b"b" and again.generation() == 2
    again.save(b"c")
    assert _reboot(again).load() == b"c" and again.generation() == 3


def test_corrupt_state_loads_as_none():
    """A copy whose CRC, length or magic does not match loads as None, never as wrong bytes."""
    st = FileState(LfsFlash.fresh(16))
    st.save(b"violation lockout")
    raw = bytearray(st.flash.read("/state"))
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x04
        st.flash.write("/state", bytes(bad))
        assert FileState(st.flash).load() is None
    st.flash.write("/state", bytes(raw[:-1]))
    assert FileState(st.flash).load() is None


def test_pair_falls_back_to_the_other_slot_when_the_newest_is_damaged():
    """With two slots, a damaged newest copy leaves the previous whole copy to load."""
    st = PairState(LfsFlash.fresh(16))
    st.save(b"old")
    st.save(b"new")
    newest = st.slots[st._cur]
    raw = bytearray(st.flash.read(newest))
    raw[-1] ^= 1
    st.flash.write(newest, bytes(raw))
    assert PairState(st.flash).load() == b"old"


def test_leftover_temp_file_is_ignored_and_removed():
    """A temp copy left by a cut before the rename does not replace the current state."""
    st = FileState(LfsFlash.fresh(16))
    st.save(b"current")
    st.flash.write("/state.tmp", b"half")
    again = FileState(st.flash)
    assert again.load() == b"current" and st.flash.stat("/state.tmp") == -1


@pytest.mark.parametrize("cls", STORES)
def test_identity_is_a_store_of_its_own(cls):
    """The identity comes back after a reboot, apart from the state: a state that no longer loads (damaged in
    every byte) leaves it whole, and a damaged identity loads as None, never as wrong bytes."""
    st = cls(LfsFlash.fresh(16))
    assert st.load_identity() is None
    st.save_identity(b"ID-4711")
    st.save(b"state")
    paths = ["/state"] if cls is FileState else list(st.slots)
    for path in [p for p in paths if st.flash.stat(p) >= 0]:
        st.flash.write(path, b"\xff" * len(st.flash.read(path)))
    again = _reboot(st)
    assert again.load() is None and again.load_identity() == b"ID-4711"
    ident = "/state.id" if cls is FileState else "/state.id.a"
    raw = bytearray(st.flash.read(ident))
    raw[-1] ^= 1
    st.flash.write(ident, bytes(raw))
    assert _reboot(st).load_identity() is None
