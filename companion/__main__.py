"""`python -m companion [serve|migrate|rotate-keys|worker|create-staff|presets] [--host H] [--port P] [--workers N]`."""

import argparse
import sys

import uvicorn
from pydantic import ValidationError
from uvicorn.config import STARTUP_FAILURE

from companion.app.core import httpserver, migrate, workers
from companion.app.core.config import get_settings


def _rotate() -> int:
    from companion.app import crud
    from companion.app.core.db import Database
    from companion.app.core.keyring import Keyring

    settings = get_settings()
    db = Database(settings)
    try:
        with db.sessions() as session:
            n = crud.rotate_keys(session, Keyring(settings))
            session.commit()
        return n
    finally:
        db.close()


def _presets() -> int:
    from companion.app import crud
    from companion.app.core.db import Database

    settings = get_settings()
    migrate.upgrade(settings)
    db = Database(settings)
    try:
        with db.write_session() as session:
            n = crud.refresh_presets(session)
            session.commit()
        return n
    finally:
        db.close()


def _worker(once: bool) -> None:
    from companion.app.billing import context as billing_context
    from companion.app.core.db import Database
    from companion.app.core.keyring import Keyring
    from companion.app.notifications import worker
    from companion.app.portal.config import PortalSettings
    from companion.app.portal.context import PortalContext

    settings = get_settings()
    migrate.upgrade(settings)
    db = Database(settings)
    ps = PortalSettings()
    billing = billing_context.build(settings, PortalContext.build(settings, ps, Keyring(settings)))
    try:
        if once:
            print("notifications %d, emails sent %d" % worker.run_once(db, ps, billing))
        else:
            worker.run(db, ps, billing=billing)
    finally:
        close = getattr(billing.gateway, "close", None)
        if close is not None:
            close()
        db.close()


def _create_staff(email: str) -> None:
    import getpass
    import os

    from companion.app.accounts import staff
    from companion.app.core.db import Database
    from companion.app.core.keyring import Keyring
    from companion.app.core.problems import Problem
    from companion.app.portal.config import PortalSettings
    from companion.app.portal.context import PortalContext

    settings = get_settings()
    migrate.upgrade(settings)
    password = os.environ.get("PORTAL_STAFF_PASSWORD") or getpass.getpass("password for " + email + ": ")
    db = Database(settings)
    try:
        with db.sessions() as session:
            ctx = PortalContext.build(settings, PortalSettings(), Keyring(settings))
            try:
                user = staff.create_staff_user(session, ctx, email, password)
            except Problem as exc:
                raise SystemExit(exc.detail) from None
            session.commit()
            print("staff user", user.id, user.email)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> None:
    """Serve the API (default), migrate the database, or re-encrypt secrets under the current master key."""
    p = argparse.ArgumentParser(prog="python -m companion")
    p.add_argument("action", nargs="?", default="serve", choices=("serve", "migrate", "rotate-keys", "worker", "create-staff", "presets"))
    p.add_argument("email", nargs="?", help="create-staff: the staff user's email (password: PORTAL_STAFF_PASSWORD"
                   " or a prompt)")
    p.add_argument("--once", action="store_true", help="worker: one round, then exit")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    try:
        settings = get_settings()
        if args.action == "serve":
            settings.admin_key()  # generated (and shown) here, once, in a local environment without one
            from companion.app.portal.config import PortalSettings

            PortalSettings()  # the portal's too: a worker process would fail on them, after the port was opened
    except (ValidationError, ValueError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()))  # the setting a field error is about
            print("companion: refusing to start: " + (where + ": " if where else "")
                  + str(e["msg"]).removeprefix("Value error, "), file=sys.stderr)
        raise SystemExit(2) from None
    if args.action == "migrate":
        migrate.upgrade(settings)
        return
    if args.action == "worker":
        _worker(args.once)
        return
    if args.action == "create-staff":
        if not args.email:
            p.error("create-staff needs an email")
        _create_staff(args.email)
        return
    if args.action == "rotate-keys":
        print("re-encrypted", _rotate())
        return
    if args.action == "presets":
        print("handsets given a new preset version", _presets())
        return
    if args.workers > 1:
        migrate.upgrade(settings)  # once, before the workers start
    if args.workers > 1 and workers.available():  # a listening socket per worker (core/workers.py says why)
        try:
            served = workers.serve(uvicorn.Config("companion.main:app", host=args.host, port=args.port,
                                                  workers=args.workers, log_level=args.log_level,
                                                  http=httpserver.SPEC))
        except OSError as exc:
            print("companion: cannot listen on %s:%d: %s" % (args.host, args.port, exc.strerror or exc),
                  file=sys.stderr)
            raise SystemExit(1) from None
        if not served:
            print("companion: a worker failed to start (its error is above): stopped", file=sys.stderr)
            raise SystemExit(STARTUP_FAILURE)
        return
    uvicorn.run("companion.main:app", host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, http=httpserver.SPEC)


if __name__ == "__main__":
    main()
