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

StateStore
    load() -> bytes or None                      None when missing or corrupt (the caller fails safe)
    save(data)                                   atomic: after a power cut, load() gives old or new, whole
"""
