"""`python -m companion [serve|migrate|rotate-keys] [--host H] [--port P] [--workers N]`."""

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from companion.app.core import httpserver, migrate
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


def main(argv: list[str] | None = None) -> None:
    """Serve the API (default), migrate the database, or re-encrypt secrets under the current master key."""
    p = argparse.ArgumentParser(prog="python -m companion")
    p.add_argument("action", nargs="?", default="serve", choices=("serve", "migrate", "rotate-keys"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    try:
        settings = get_settings()
        if args.action == "serve":
            settings.admin_key()  # generated (and shown) here, once, in a local environment without one
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
    if args.action == "rotate-keys":
        print("re-encrypted", _rotate())
        return
    if args.workers > 1:
        migrate.upgrade(settings)  # once, before the workers start
    uvicorn.run("companion.main:app", host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level, http=httpserver.SPEC)


if __name__ == "__main__":
    main()
