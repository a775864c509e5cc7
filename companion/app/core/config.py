"""Settings from the environment (pydantic-settings), as in the full-stack FastAPI template."""

import base64
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ADMIN_KEY = "changethis"


class Settings(BaseSettings):
    """Every knob of the companion; read once from the environment (and an optional .env file)."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    ENVIRONMENT: Literal["local", "staging", "production"] = "local"
    PROJECT_NAME: str = "Interlock companion"
    API_V1_STR: str = "/api/v1"
    # sqlite file in WAL mode by default; postgresql://... selects PostgreSQL (asyncpg)
    DATABASE_URL: str = "sqlite:///./companion.db"
    # "kid:base64key,kid2:base64key"; the secrets are encrypted under MASTER_KEY_ID (the first kid if unset)
    MASTER_KEYS: str = ""
    MASTER_KEY_ID: str = ""
    # used only in the local environment when MASTER_KEYS is empty: a random key kept in this file
    MASTER_KEY_FILE: str = ".companion-master.key"
    ADMIN_API_KEY: str = DEFAULT_ADMIN_KEY
    AUTO_MIGRATE: bool = True
    # sync protocol limits
    SYNC_WINDOW_S: int = Field(default=300, ge=10)
    NONCE_KEEP_S: int = Field(default=900, ge=60)
    MAX_BODY_BYTES: int = Field(default=65536, ge=1024)
    MAX_LOG_CHUNK: int = Field(default=64, ge=1)
    MAX_COMMANDS_PER_RESPONSE: int = Field(default=8, ge=1)
    COMMAND_TTL_S: int = Field(default=72 * 3600, ge=60)
    CODE_VALID_H: int = Field(default=6, ge=1)
    TECH_TOKEN_DEFAULT_S: int = 8 * 3600
    TECH_TOKEN_MAX_S: int = 24 * 3600
    DB_POOL_SIZE: int = Field(default=10, ge=1)
    # PostgreSQL: run the sync exchange on an asyncpg pool (False: the same psycopg path as everything else)
    SYNC_ASYNCPG: bool = True

    @model_validator(mode="after")
    def _no_defaults_outside_local(self) -> "Settings":
        if self.ENVIRONMENT != "local":
            if self.ADMIN_API_KEY == DEFAULT_ADMIN_KEY:
                raise ValueError("ADMIN_API_KEY must be set outside the local environment")
            if not self.MASTER_KEYS:
                raise ValueError("MASTER_KEYS must be set outside the local environment")
        return self

    @property
    def async_database_url(self) -> str:
        """DATABASE_URL with the async driver named (asyncpg / aiosqlite)."""
        url = self.DATABASE_URL
        for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix):]
        if url.startswith("sqlite+aiosqlite://"):
            return url
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://"):]
        return url

    @property
    def sync_database_url(self) -> str:
        """DATABASE_URL with a blocking driver named (psycopg / sqlite3), for Alembic."""
        url = self.async_database_url
        if url.startswith("postgresql+asyncpg://"):
            return "postgresql+psycopg://" + url[len("postgresql+asyncpg://"):]
        if url.startswith("sqlite+aiosqlite://"):
            return "sqlite://" + url[len("sqlite+aiosqlite://"):]
        return url

    @property
    def plain_postgres_url(self) -> str:
        """DATABASE_URL as libpq/asyncpg take it (postgresql://...)."""
        url = self.async_database_url
        return "postgresql://" + url.split("://", 1)[1]

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.async_database_url.startswith("sqlite")

    def master_keys(self) -> tuple[str, dict[str, bytes]]:
        """(current key id, {key id: 32-byte key}) from MASTER_KEYS or the local key file."""
        keys: dict[str, bytes] = {}
        spec = self.MASTER_KEYS
        if not spec:
            spec = _local_key_file(Path(self.MASTER_KEY_FILE))
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            kid, _, b64 = item.partition(":")
            key = base64.b64decode(b64)
            if len(key) != 32 or not kid:
                raise ValueError("each master key must be 'kid:base64 of 32 bytes'")
            keys[kid] = key
        if not keys:
            raise ValueError("no master key configured")
        current = self.MASTER_KEY_ID or next(iter(keys))
        if current not in keys:
            raise ValueError("MASTER_KEY_ID names no key in MASTER_KEYS")
        return current, keys


def _local_key_file(path: Path) -> str:
    """Read (or create, readable by the owner only) the development master key file."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("local:" + base64.b64encode(os.urandom(32)).decode() + "\n")
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
