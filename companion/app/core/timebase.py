"""Device time: seconds since 2024-01-01T00:00Z, and days since that date (0 = not set)."""

import datetime as dt
import time

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
EPOCH_UNIX = 1704067200
EPOCH_DATE = dt.date(2024, 1, 1)


def device_now() -> int:
    """The current device time in seconds."""
    return int(time.time()) - EPOCH_UNIX


def day_of(date: dt.date | None) -> int:
    """Days since 2024-01-01 for date (0 when date is None)."""
    if date is None:
        return 0
    return (date - EPOCH_DATE).days


def date_of(day: int) -> dt.date | None:
    """The date for a day number (None for 0)."""
    if not day:
        return None
    return EPOCH_DATE + dt.timedelta(days=day)


def today() -> dt.date:
    """Today's date in UTC."""
    return dt.datetime.now(dt.UTC).date()
