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


def test_a_parameter_is_bound_as_sqlalchemy_binds_it():
    """A statement given to _OnSqliteDriver with a timestamp parameter (a constant or the caller's): SQLite
    compares the text SQLAlchemy stores, so the parameter must be that text too ('... 12:00:00.000000', no
    '+00:00'), not the driver's own rendering of a datetime; the same rows as through SQLAlchemy."""
    import datetime as dt

    from sqlalchemy import bindparam, select

    from companion.app.models import Base
    from companion.app.notifications.models import Notification

    engine = create_engine("sqlite://")
    try:
        Base.metadata.create_all(engine, tables=[Notification.__table__])
        at = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
        with engine.begin() as conn:
            conn.execute(Notification.__table__.insert(), [
                {"user_id": 1, "kind": "k", "params": {}, "read": False, "created_at": at}])
        t = Notification.__table__
        for statement, params in ((select(t.c.id).where(t.c.created_at == bindparam("at")), {"at": at}),
                                  (select(t.c.id).where(t.c.created_at == at), {})):
            with engine.connect() as conn:
                plain = conn.execute(statement, params).all()
                fast = reads._OnSqliteDriver(statement, conn.dialect).rows(conn, params)
            assert len(plain) == 1 and [tuple(r) for r in fast] == [tuple(r) for r in plain]
    finally:
        engine.dispose()
