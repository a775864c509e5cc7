"""The dashboard's statement on SQLite's own driver (portal/reads.py, _OnSqliteDriver) fails as it does through
SQLAlchemy: with SQLAlchemy's exception around the driver's, which the app's handler answers with 503 and
Retry-After (a locked or unreadable database file), not a bare 500."""

import pytest
from sqlalchemy import create_engine, exc

from companion.app.portal import reads


def test_a_driver_error_is_sqlalchemys_error():
    engine = create_engine("sqlite://")  # no tables: "no such table", an OperationalError
    try:
        with engine.connect() as conn:
            with pytest.raises(exc.OperationalError) as plain:
                conn.execute(reads.BY_USER, {"uid": 1, "now_ts": 0}).all()
            with pytest.raises(exc.OperationalError) as fast:
                reads.by_user(conn, 1)
            assert str(fast.value.orig) == str(plain.value.orig)
            with pytest.raises(exc.OperationalError):
                reads.by_session(conn, "x")
    finally:
        engine.dispose()
