"""Dependency aliases (as in the full-stack FastAPI template): sessions, settings, keyring, the admin caller."""

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from companion.app.core.config import Settings
from companion.app.core.db import Database
from companion.app.core.keyring import Keyring
from companion.app.core.problems import Problem
from companion.app.sync.protocol import SyncService


def get_db(request: Request) -> Database:
    """The app's database."""
    return request.app.state.db  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_keyring(request: Request) -> Keyring:
    """The app's keyring."""
    return request.app.state.keyring  # type: ignore[no-any-return]


def get_sync(request: Request) -> SyncService:
    """The app's sync service."""
    return request.app.state.sync  # type: ignore[no-any-return]


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]
SyncDep = Annotated[SyncService, Depends(get_sync)]


def get_session(db: DbDep) -> Iterator[Session]:
    """A read session."""
    with db.sessions() as session:
        yield session


def get_write_session(db: DbDep) -> Iterator[Session]:
    """A session for a write transaction (SQLite: holding the single-writer lock); routes commit it."""
    with db.write_session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The back office's admin API key")


def get_admin(request: Request, key: Annotated[str | None, Security(_api_key)]) -> str:
    """The authorised back-office caller (the app's admin API key; the Guard middleware checked it already,
    before the body was read: this documents the key in the schema and checks again)."""
    admin_key: str = request.app.state.admin_key
    if key is None or not hmac.compare_digest(key.encode(), admin_key.encode()):
        raise Problem(401, "unauthenticated", "a valid X-API-Key header is required")
    return "admin"


AdminDep = Annotated[str, Depends(get_admin)]
