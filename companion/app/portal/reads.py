"""The dashboard's read path, the portal's most visited page: one SQLAlchemy Core statement brings the user,
their account, the unread count, billing's lines (auto-pay, its card's expiry, the last decline), the program's
end, the next booked visit with its center, and every device with its handset's last report and open clear (one
row per device; the account's columns repeat on each). Rows, not ORM objects: nothing is tracked, nothing is written. The page asks it by session token (the
session check is in the same round trip), the JSON API by user id; both build the Dashboard with `dashboard_of`
in services, so the rules stay in one place."""

import collections
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, String, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from companion.app.accounts.models import DeviceLink, User, WebSession
from companion.app.accounts.services import session_live
from companion.app.billing.models import DeviceAutopay, PaymentMethod
from companion.app.models import Account, Command, Handset, Payment
from companion.app.notifications.models import Notification
from companion.app.service.models import Appointment, Program, ServiceCenter

_users = User.__table__
_links = DeviceLink.__table__
_accounts = Account.__table__
_handsets = Handset.__table__
_handsets_p = Handset.__table__.alias("first_handset")
_sessions = WebSession.__table__
_autopay = DeviceAutopay.__table__
_cards = PaymentMethod.__table__
_programs = Program.__table__
_appts = Appointment.__table__
_visit = Appointment.__table__.alias("visit")
_centers = ServiceCenter.__table__

_UNREAD = (select(func.count()).select_from(Notification.__table__)
           .where(Notification.user_id == _users.c.id, Notification.read.is_(False))
           .correlate(_users).scalar_subquery())
# per device, the newest reset fee whose clear is still on its way
_OPEN_CLEAR = (select(Payment.id).join(Command, Command.id == Payment.command_id)
               .where(Payment.handset_id == _links.c.handset_id, Payment.kind == "reset_fee",
                      (Command.status == "queued") | (Command.status == "delivered"))  # no expanding IN
               .order_by(Payment.id.desc()).limit(1).correlate(_links).scalar_subquery())
# the account's next booked calibration or inspection at a center, after :now_ts (appointments.next_service_of)
_NEXT_VISIT = (select(_appts.c.id)
               .where(_appts.c.account_id == _accounts.c.id, _appts.c.status == "booked",
                      (_appts.c.kind == "calibration") | (_appts.c.kind == "inspection"),
                      _appts.c.center_id.is_not(None), _appts.c.starts_ts > bindparam("now_ts"))
               .order_by(_appts.c.starts_ts, _appts.c.id).limit(1).correlate(_accounts).scalar_subquery())
# the account's first handset, which its installments are booked to (billing.ledger.primary_handset)
_PRIMARY = (select(func.min(_handsets_p.c.id)).where(_handsets_p.c.account_id == _accounts.c.id)
            .correlate(_accounts).scalar_subquery())
_USER_COLS = (_users.c.id.label("user_id"), _users.c.email, _users.c.role, _users.c.name.label("user_name"),
              _users.c.language, _users.c.must_change_password, _users.c.active, _users.c.account_id)
_DASH_COLS = (_accounts.c.id.label("account_row"), _accounts.c.name.label("account_name"), _accounts.c.schedule,
              _accounts.c.first_due, _accounts.c.periods_paid, _accounts.c.period_base, _accounts.c.next_due,
              _accounts.c.installment_cents,
              _accounts.c.credit_cents, _accounts.c.reset_fee_cents, _accounts.c.allow_codes,
              _UNREAD.label("unread"),
              _links.c.id.label("link_id"), _links.c.label, _links.c.kind, _links.c.handset_id,
              _handsets.c.serial, _handsets.c.service_due_day, _handsets.c.inspection_due_day,
              _handsets.c.last_sync_at, _handsets.c.reported, _OPEN_CLEAR.label("open_clear"),
              # billing's lines (billing.services.dashboard_billing_of): each device's auto-pay and its card
              _autopay.c.handset_id.label("autopay_row"), _autopay.c.autopay,
              _autopay.c.method_id.label("autopay_method"), _autopay.c.last_decline, _autopay.c.retry_at,
              _PRIMARY.label("primary_handset"), _cards.c.exp_month.label("card_exp_month"),
              _cards.c.exp_year.label("card_exp_year"), _cards.c.brand.label("card_brand"),
              _cards.c.last4.label("card_last4"),
              # the program's end (programs.status_of)
              _programs.c.account_id.label("program_row"), _programs.c.ends_on, _programs.c.ended_at,
              _programs.c.certificate_doc_id, _programs.c.report_sent_at,
              # the next booked visit (appointments.next_service_of)
              _visit.c.id.label("visit_id"), _visit.c.kind.label("visit_kind"),
              _visit.c.starts_ts.label("visit_starts"), _visit.c.center_id.label("visit_center"),
              _centers.c.name.label("center_name"), _centers.c.tz.label("center_tz"))


def _joined(base: Any) -> Any:
    """The dashboard's joins after `base` (which holds the users table), left-deep in the order PostgreSQL should
    run them: it keeps the written order of a join of more than join_collapse_limit (8) tables, so the one
    selective row (the session, or the user by id) comes first and every other table is reached through an index
    from it. Nested the other way round, PostgreSQL joined every account's row before filtering by session."""
    return (base.outerjoin(_accounts, (_accounts.c.id == _users.c.account_id) & (_users.c.role == "driver"))
            .outerjoin(_programs, _programs.c.account_id == _accounts.c.id)
            .outerjoin(_visit, _visit.c.id == _NEXT_VISIT)
            .outerjoin(_centers, _centers.c.id == _visit.c.center_id)
            .outerjoin(_links, _links.c.account_id == _accounts.c.id)
            .outerjoin(_handsets, _handsets.c.id == _links.c.handset_id)
            .outerjoin(_autopay, (_autopay.c.handset_id == _links.c.handset_id)
                       & (_autopay.c.account_id == _accounts.c.id))
            .outerjoin(_cards, _cards.c.id == _autopay.c.method_id))


# built once: the page's statement (session, user and dashboard) and the API's (by user id)
BY_SESSION = (select(_sessions.c.csrf, _sessions.c.expires_at, *_USER_COLS, *_DASH_COLS)
              .select_from(_joined(_sessions.join(_users, _users.c.id == _sessions.c.user_id)))
              .where(_sessions.c.token_hash == bindparam("h")).order_by(_links.c.id))
BY_USER = (select(*_USER_COLS, *_DASH_COLS).select_from(_joined(_users)).where(_users.c.id == bindparam("uid"))
           .order_by(_links.c.id))


class Viewer:
    """The signed-in user as the dashboard's statement found them: the columns the pages read, in a plain
    object (a transient ORM User costs 0.1 ms to build). Never added to a session; nothing changes through it.
    Typed as User for the pages (`user_of`), which only read it."""

    __slots__ = ("id", "email", "role", "name", "language", "must_change_password", "active", "account_id")

    def __init__(self, row: Any):
        self.id = row.user_id
        self.email = row.email
        self.role = row.role
        self.name = row.user_name
        self.language = row.language
        self.must_change_password = row.must_change_password
        self.active = row.active
        self.account_id = row.account_id


@dataclass
class SignedIn:
    """The signed-in user and session as the dashboard's statement found them."""

    user: User  # a Viewer: read its columns, change nothing through it
    csrf: str
    rows: Sequence[Any]


def user_of(row: Any) -> User:
    """The user of a row of the statement, read-only (see Viewer)."""
    return cast(User, Viewer(row))


def _now_ts() -> int:
    return int(time.time())


def _compiled(statement: Any, dialect: Any) -> tuple[Any, str, tuple[str, ...], dict[str, Any]]:
    """A statement compiled for a dialect, to run on its driver: (compiled, SQL text, the names of its positional
    parameters in order, the values of the constant ones; the caller gives the rest)."""
    compiled = statement.compile(dialect=dialect)
    given = {name: None for name, bind in compiled.binds.items() if bind.required}  # the caller's
    constants = {k: v for k, v in compiled.construct_params(given).items() if k not in given}
    return compiled, str(compiled), tuple(compiled.positiontup or ()), constants


def _row_type(statement: Any) -> Any:
    """A named tuple of the statement's columns: its rows read by attribute, as SQLAlchemy's are."""
    return collections.namedtuple("Row", [c.key for c in statement.selected_columns])  # type: ignore[misc]


class _OnSqliteDriver:
    """A statement run on SQLite's own driver, its rows made with SQLAlchemy's own type conversions (dates,
    datetimes, booleans, JSON), as named tuples: the same rows as `conn.execute(statement).all()` at 0.03 ms
    instead of 0.07 ms, a tenth of the dashboard's CPU. Compiled once. Where the engine is instrumented (an
    event listener, as testing.statements_of adds) the statement goes through SQLAlchemy so the listener sees
    it."""

    def __init__(self, statement: Any, dialect: Any):
        compiled, self.sql, self.order, self.constants = _compiled(statement, dialect)
        # each parameter bound as SQLAlchemy binds it (a datetime as the text SQLite stores, say)
        self.bind = [compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.order]
        if not any(self.bind):
            self.bind = []
        self.convert = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                        for c in statement.selected_columns]
        self.row = _row_type(statement)

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        values = {**self.constants, **params}
        driver = conn.connection.driver_connection
        args = tuple(values[name] for name in self.order)
        if self.bind:
            args = tuple(v if f is None else f(v) for f, v in zip(self.bind, args, strict=True))
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, args)
            raw = cursor.fetchall()
        except conn.dialect.loaded_dbapi.Error as e:
            # as SQLAlchemy raises it (the app answers an OperationalError, a locked file say, with 503), the
            # connection dropped from the pool when the driver says it is gone
            gone = conn.dialect.is_disconnect(e, driver, cursor)
            if gone:
                conn.invalidate(e)
            raise DBAPIError.instance(self.sql, args, e, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect,
                                      connection_invalidated=gone) from e
        finally:
            cursor.close()
        make, convert = self.row._make, self.convert
        return [make([f(v) if f is not None else v for f, v in zip(convert, r, strict=True)]) for r in raw]


_ON_DRIVER: dict[int, _OnSqliteDriver] = {}


def _rows(conn: Connection, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
    """The statement's rows: on SQLite through its driver (_OnSqliteDriver), elsewhere through SQLAlchemy."""
    d = conn.dispatch
    if conn.dialect.name != "sqlite" or d.before_execute or d.before_cursor_execute or d.after_cursor_execute:
        return conn.execute(statement, params).all()
    on_driver = _ON_DRIVER.get(id(statement))
    if on_driver is None:
        on_driver = _ON_DRIVER[id(statement)] = _OnSqliteDriver(statement, conn.dialect)
    return on_driver.rows(conn, params)


def by_session(conn: Connection, token_hash: str) -> SignedIn | None:
    """The user of a live session with the dashboard's rows; None when the session is unknown, expired or the
    user disabled (the same checks as accounts.session_user)."""
    return signed_in_from(_rows(conn, BY_SESSION, {"h": token_hash, "now_ts": _now_ts()}))


def signed_in_from(rows: Sequence[Any]) -> SignedIn | None:
    """The signed-in user from the rows of BY_SESSION, if the session is live."""
    if not rows:
        return None
    first = rows[0]
    if not session_live(first.expires_at, first.active):
        return None
    return SignedIn(user_of(first), first.csrf, rows)


def by_user(conn: Connection, user_id: int) -> Sequence[Any]:
    """The dashboard's rows for a user (the JSON API, which authenticated the user already)."""
    return _rows(conn, BY_USER, {"uid": user_id, "now_ts": _now_ts()})


# ---- PostgreSQL through the sync path's asyncpg pool: no thread hop, a prepared statement, ~5x less CPU
_PG_ROW = _row_type(BY_SESSION)
_PG_JSON = tuple(i for i, c in enumerate(BY_SESSION.selected_columns) if isinstance(c.type, JSON))


def _pg_row(record: Any) -> Any:
    """An asyncpg record of BY_SESSION as a named tuple, read by attribute as SQLAlchemy rows are, its JSON
    columns decoded once (asyncpg returns them as text)."""
    values = list(record)
    for i in _PG_JSON:
        if isinstance(values[i], str):
            values[i] = json.loads(values[i])
    return _PG_ROW._make(values)


def _many_sessions() -> Any:
    """BY_SESSION for several sessions at once (PostgreSQL): for each token hash of the array :hs, in order, the
    same statement as a LATERAL subquery run with that hash (OFFSET 0 keeps PostgreSQL from merging it into the
    outer query, so each hash is looked up through the session's index as BY_SESSION is). Each row starts with
    `want`, the position of its hash in the array (1-based): the rows of two requests are told apart by it,
    never by anything a row says."""
    want = (func.unnest(bindparam("hs", type_=ARRAY(String))).table_valued("h", with_ordinality="i")
            .render_derived(name="want"))
    one = (select(_sessions.c.csrf, _sessions.c.expires_at, *_USER_COLS, *_DASH_COLS)
           .select_from(_joined(_sessions.join(_users, _users.c.id == _sessions.c.user_id)))
           .where(_sessions.c.token_hash == want.c.h).offset(0).lateral("d"))
    return select(want.c.i.label("want"), *one.c).select_from(want.join(one, true())).order_by(want.c.i,
                                                                                              one.c.link_id)


BY_SESSIONS = _many_sessions()


@functools.cache
def _asyncpg_statement(many: bool = False) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """BY_SESSION (or BY_SESSIONS) as asyncpg SQL: (text, the names of its $1..$n, the values of the constant
    ones)."""
    from sqlalchemy.dialects.postgresql import asyncpg as pg

    _, sql, order, constants = _compiled(BY_SESSIONS if many else BY_SESSION, pg.dialect())
    return sql, order, constants


async def by_session_asyncpg(conn: Any, token_hash: str) -> SignedIn | None:
    """by_session on an asyncpg connection (the same statement, the same checks)."""
    sql, order, constants = _asyncpg_statement()
    values = {**constants, "h": token_hash, "now_ts": _now_ts()}
    rows = [_pg_row(r) for r in await conn.fetch(sql, *(values[name] for name in order))]
    return signed_in_from(rows)


async def by_sessions_asyncpg(conn: Any, token_hashes: Sequence[str]) -> list[SignedIn | None]:
    """by_session for each of several token hashes in one statement (BY_SESSIONS): the answers in the same
    order, each from its own rows only."""
    sql, order, constants = _asyncpg_statement(many=True)
    values = {**constants, "hs": list(token_hashes), "now_ts": _now_ts()}
    rows: list[list[Any]] = [[] for _ in token_hashes]
    for r in await conn.fetch(sql, *(values[name] for name in order)):
        rows[r[0] - 1].append(_pg_row(tuple(r)[1:]))
    return [signed_in_from(mine) for mine in rows]
