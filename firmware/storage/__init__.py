"""Where the firmware keeps its evidence and its state.

Two interfaces, each with an in-memory implementation in `memory.py` (used by the host simulator and the
tests until flash storage is wired in) and a flash implementation on littlefs:

EventLog
    append(wall, rtype, a, b, c, photo) -> seq   commit one record; returns its sequence number
    next_seq() -> int                            the sequence number the next record will get
    acknowledge(seq)                             the companion holds every record up to and including seq
    acked() -> int                               highest acknowledged sequence number (0 = none)
    nearly_full() -> bool                        unacknowledged records are near capacity: lock for service
    read(seq) -> (seq, wall, rtype, a, b, c, photo) or None
    first_seq() -> int                           sequence number of the oldest record held

StateStore
    load() -> bytes or None                      None when missing or corrupt (the caller fails safe)
    save(data)                                   atomic: after a power cut, load() gives old or new, whole
    load_identity() / save_identity(data)        the same, for the identity (device id, secret) kept apart
                                                 from the state so a corrupt state does not lose it

Implementations: `memory.MemoryLog` / `memory.MemoryState` (RAM), `log.FlashLog` / `state.FileState`
(`state.PairState`) on the flash verbs of `drivers/flash.py`; `record` is the on-flash and on-wire record format.
FlashLog adds: first_seq(), head() -> (next_seq, chain hash), raw(seq, count) -> encoded records (for upload;
the companion checks them with record.verify), export_size() / export_read(off, n) (service-port download:
record.HEADER then the held records), free(now), verify(), acknowledge(seq, now=-1).
"""


def on_flash(flash, capacity=40400, reserve=200, retention=30 * 86400):
    """The event log (under /log) and the state store (/state) on a flash driver, recovered after any cut."""
    from storage.log import FlashLog
    from storage.state import FileState

    return FlashLog(flash, capacity=capacity, reserve=reserve, retention=retention), FileState(flash)
