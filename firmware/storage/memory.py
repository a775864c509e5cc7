"""In-memory log and state store: the storage the simulator uses when no flash image is given."""

class MemoryLog:
    """Append-only list of records that survives a simulated power cut (the object outlives the firmware)."""

    def __init__(self, capacity=20000, reserve=200):
        self.capacity = capacity
        self.reserve = reserve
        self._records = []
        self._first = 1
        self._acked = 0

    def append(self, wall, rtype, a=0, b=0, c=0, photo=0):
        """Commit one record and return its sequence number."""
        seq = self._first + len(self._records)
        self._records.append((seq, wall, rtype, a, b, c, photo))
        return seq

    def next_seq(self):
        """Sequence number the next record will get."""
        return self._first + len(self._records)

    def acknowledge(self, seq):
        """Free acknowledged records (retention is not modelled in memory)."""
        if seq > self._acked:
            self._acked = min(seq, self.next_seq() - 1)
            drop = self._acked - self._first + 1
            if drop > 0:
                del self._records[:drop]
                self._first += drop

    def first_seq(self):
        """Sequence number of the oldest record held."""
        return self._first

    def acked(self):
        """Highest acknowledged sequence number."""
        return self._acked

    def nearly_full(self):
        """True when unacknowledged records leave less than the reserve free."""
        return len(self._records) >= self.capacity - self.reserve

    def read(self, seq):
        """The record with sequence seq, or None."""
        i = seq - self._first
        if 0 <= i < len(self._records):
            return self._records[i]
        return None


class MemoryState:
    """A state slot whose save is atomic by construction."""

    def __init__(self):
        self._data = None
        self._stamp = 0
        self._identity = None

    def load_identity(self):
        """The identity bytes last saved, or None."""
        return self._identity

    def save_identity(self, data):
        """Keep a copy of the identity bytes."""
        self._identity = bytes(data)

    def load(self):
        """The last saved bytes, or None."""
        return self._data

    def save(self, data):
        """Keep a copy of data."""
        self._data = bytes(data)

    def stamp(self, wall):
        """Note the handset was alive at wall."""
        self._stamp = wall

    def last_stamp(self):
        """The last stamp, or 0."""
        return self._stamp

