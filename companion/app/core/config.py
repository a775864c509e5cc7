"""Settings from the environment (pydantic-settings), as in the full-stack FastAPI template."""

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# admin keys that were ever published (in this project's docs or the template it grew from): never accepted
PUBLISHED_ADMIN_KEYS = frozenset({"changethis", "changeme", "secret", "admin", "password"})
MIN_ADMIN_KEY_LEN = 16


def default_config_dir() -> str:
    """Where a local companion keeps the files it generates: $XDG_CONFIG_HOME (or ~/.config)/interlock-companion."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "interlock-companion")


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
    # local environment only: the directory of the generated key files (never beside the database)
    CONFIG_DIR: str = Field(default_factory=default_config_dir)
    # used only in the local environment when MASTER_KEYS is empty: a random key kept in this file
    # (default: CONFIG_DIR/master.key)
    MASTER_KEY_FILE: str = ""
    # the back office's key; in the local environment, unset means a random key generated on first start and
    # kept in CONFIG_DIR/admin.key (printed once, when it is made)
    ADMIN_API_KEY: str = ""
    AUTO_MIGRATE: bool = True
    # sync protocol limits
    SYNC_WINDOW_S: int = Field(default=300, ge=10)
    NONCE_KEEP_S: int = Field(default=900, ge=60)
    MAX_BODY_BYTES: int = Field(default=65536, ge=1024)
    MAX_LOG_CHUNK: int = Field(default=64, ge=1)
    MAX_COMMANDS_PER_RESPONSE: int = Field(default=8, ge=1)
    COMMAND_TTL_S: int = Field(default=72 * 3600, ge=60)
    CODE_VALID_H: int = Field(default=6, ge=1)
    # technician token lifetimes: at least a minute, at most the day the API documents; default <= max
    TECH_TOKEN_DEFAULT_S: int = Field(default=8 * 3600, ge=60, le=24 * 3600)
    TECH_TOKEN_MAX_S: int = Field(default=24 * 3600, ge=60, le=24 * 3600)
    DB_POOL_SIZE: int = Field(default=10, ge=1)
    # PostgreSQL: run the sync exchange on an asyncpg pool (False: the same psycopg path as everything else)
    SYNC_ASYNCPG: bool = True
    # PostgreSQL (with SYNC_ASYNCPG): connections per process for the portal's dashboard reads, which the
    # requests waiting for one read together (portal/batched.py)
    DASHBOARD_CONNECTIONS: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _no_defaults_outside_local(self) -> "Settings":
        if self.ENVIRONMENT != "local":
            if not self.ADMIN_API_KEY:
                raise ValueError("ADMIN_API_KEY must be set outside the local environment")
            if not self.MASTER_KEYS:
                raise ValueError("MASTER_KEYS must be set outside the local environment")
        if self.ADMIN_API_KEY:
            _check_admin_key(self.ADMIN_API_KEY)
        if self.TECH_TOKEN_DEFAULT_S > self.TECH_TOKEN_MAX_S:
            raise ValueError(f"TECH_TOKEN_DEFAULT_S ({self.TECH_TOKEN_DEFAULT_S}) must not exceed "
                             f"TECH_TOKEN_MAX_S ({self.TECH_TOKEN_MAX_S})")
        if self.SYNC_WINDOW_S > self.NONCE_KEEP_S:
            # a request is accepted while its timestamp is within the window; its nonce must be kept at least
            # that long, or the captured request can be replayed once the nonce is pruned
            raise ValueError(f"SYNC_WINDOW_S ({self.SYNC_WINDOW_S}) must not exceed NONCE_KEEP_S "
                             f"({self.NONCE_KEEP_S}): a request could be replayed after its nonce is forgotten")
        return self

    def master_key_path(self) -> Path:
        """The local master key file (MASTER_KEY_FILE, or master.key in CONFIG_DIR)."""
        return Path(self.MASTER_KEY_FILE) if self.MASTER_KEY_FILE else Path(self.CONFIG_DIR) / "master.key"

    def admin_key_path(self) -> Path:
        """The local admin key file."""
        return Path(self.CONFIG_DIR) / "admin.key"

    def admin_key(self, announce: bool = True) -> str:
        """ADMIN_API_KEY, or (local environment) the generated key from CONFIG_DIR, made on first use and then
        printed once."""
        if self.ADMIN_API_KEY:
            return self.ADMIN_API_KEY
        path = self.admin_key_path()
        made = _create_once(path, secrets.token_urlsafe(32) + "\n")
        key = path.read_text().strip()
        _check_admin_key(key)
        if made and announce:
            print("companion: generated the admin API key (shown this once; kept in " + str(path) + "):\n  "
                  + key, flush=True)
        return key

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
            path = self.master_key_path()
            _create_once(path, "local:" + base64.b64encode(os.urandom(32)).decode() + "\n")
            spec = path.read_text().strip()
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


def _check_admin_key(key: str) -> None:
    if key.strip() in PUBLISHED_ADMIN_KEYS or len(key) < MIN_ADMIN_KEY_LEN:
        raise ValueError(f"ADMIN_API_KEY is a published or short value: use a random key of at least "
                         f"{MIN_ADMIN_KEY_LEN} characters")


def _create_once(path: Path, content: str) -> bool:
    """Write content to path, readable by the owner only, unless the file exists; True when it was made.
    The file appears whole or not at all (written aside, then linked), so two starting workers agree."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + "." + secrets.token_hex(8) + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
