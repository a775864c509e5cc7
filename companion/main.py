"""The companion's ASGI app: `uvicorn companion.main:app` (or `python -m companion`)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from companion.app.api.main import api_router
from companion.app.core import migrate, problems
from companion.app.core.config import Settings, get_settings
from companion.app.core.db import Database
from companion.app.core.guard import Guard
from companion.app.core.keyring import Keyring, check_stored_key_ids
from companion.app.portal.batched import DashboardReads
from companion.app.portal.config import PortalSettings
from companion.app.sync.asyncpg_store import AsyncpgStore
from companion.app.sync.dbapi_store import DbApiStore
from companion.app.sync.protocol import SyncService
from companion.app.web import install as install_portal


def create_app(settings: Settings | None = None, portal_settings: PortalSettings | None = None) -> FastAPI:
    """Build the app for settings (the environment's when None)."""
    settings = settings or get_settings()
    portal_settings = portal_settings or PortalSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.AUTO_MIGRATE:
            await asyncio.to_thread(migrate.upgrade, settings)
        app.state.db = Database(settings)
        await asyncio.to_thread(_check_keys, app.state.db, app.state.keyring)
        app.state.pg_sync = None
        app.state.portal_reads = None
        if not settings.is_sqlite and settings.SYNC_ASYNCPG:
            app.state.pg_sync = AsyncpgStore(app.state.sync, settings.plain_postgres_url, settings.DB_POOL_SIZE)
            await app.state.pg_sync.start()
            app.state.portal_reads = DashboardReads(settings.plain_postgres_url, settings.DASHBOARD_CONNECTIONS)
            await app.state.portal_reads.start()
        try:
            yield
        finally:
            if app.state.portal_reads is not None:
                await app.state.portal_reads.close()
            if app.state.pg_sync is not None:
                await app.state.pg_sync.close()
            app.state.db.close()
            close = getattr(app.state.billing.gateway, "close", None)
            if close is not None:
                close()

    app = FastAPI(title=settings.PROJECT_NAME, openapi_url=settings.API_V1_STR + "/openapi.json",
                  docs_url="/docs", lifespan=lifespan)
    app.state.settings = settings
    app.state.admin_key = settings.admin_key()
    app.state.keyring = Keyring(settings)
    app.state.sync = SyncService(settings, app.state.keyring)
    app.state.sync_store = DbApiStore(app.state.sync)  # the asyncpg store, when used, is made at start-up
    problems.install(app)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, _exc: Exception) -> JSONResponse:
        # a bug, never the caller's fault: a problem body rather than a bare traceback
        return problems.problem_response(500, "internal", "unexpected error")

    app.include_router(api_router, prefix=settings.API_V1_STR, responses=problems.responses(*problems.COMMON))
    # the admin key and the body limit are checked before any body is read
    app.add_middleware(Guard, admin_key=app.state.admin_key, limit=settings.MAX_BODY_BYTES,
                       prefix=settings.API_V1_STR, open_paths=(settings.API_V1_STR + "/openapi.json",
                                               settings.API_V1_STR + "/billing/webhook"),  # signed
                       open_prefixes=(settings.API_V1_STR + "/portal/",),  # bearer tokens of portal users
                       uploads=("/portal/documents", settings.API_V1_STR + "/portal/documents"),
                       upload_limit=portal_settings.DOCUMENT_MAX_BYTES + 16384)  # a file and its form
    install_portal(app, settings, app.state.keyring, portal_settings)  # pages, security headers
    return app


def _check_keys(db: Database, keyring: Keyring) -> None:
    """Refuse to start when the master keys cannot open the stored secrets (see check_stored_key_ids)."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from companion.app.models import Handset

    try:
        with db.sessions() as session:
            stored = set(session.scalars(select(Handset.key_id).distinct()).all())
    except DBAPIError:
        return  # no schema yet (AUTO_MIGRATE off) or the database is down: nothing to check now
    try:
        check_stored_key_ids(keyring, stored)
    except ValueError:
        db.close()
        raise


_app: FastAPI | None = None


def __getattr__(name: str) -> FastAPI:
    # `companion.main:app` is built on first use, so importing create_app reads no environment
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)
