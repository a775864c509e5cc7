"""The portal's settings (environment variables prefixed PORTAL_), apart from the sync service's."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    """Passwords, sessions, tokens, throttling and outgoing mail."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_file=".env", env_ignore_empty=True,
                                      extra="ignore")

    # Argon2id (pwdlib): 64 MiB, 3 passes, 4 lanes (pwdlib's recommended parameters, RFC 9106's second choice)
    ARGON2_TIME_COST: int = Field(default=3, ge=1)
    ARGON2_MEMORY_KIB: int = Field(default=65536, ge=8)
    ARGON2_PARALLELISM: int = Field(default=4, ge=1)
    SESSION_HOURS: int = Field(default=12, ge=1)
    ACCESS_TOKEN_S: int = Field(default=900, ge=30)
    REFRESH_TOKEN_DAYS: int = Field(default=30, ge=1)
    CLAIM_TOKEN_HOURS: int = Field(default=72, ge=1)
    RESET_TOKEN_MINUTES: int = Field(default=30, ge=1)
    EMAIL_TOKEN_HOURS: int = Field(default=24, ge=1)
    # throttling: failed attempts allowed per window, per account (email) and per client address
    THROTTLE_WINDOW_S: int = Field(default=900, ge=1)
    THROTTLE_PER_ACCOUNT: int = Field(default=5, ge=1)
    THROTTLE_PER_ADDRESS: int = Field(default=30, ge=1)
    # where links in emails point
    BASE_URL: str = "http://127.0.0.1:8000"
    # outgoing mail (the worker)
    SMTP_HOST: str = "127.0.0.1"
    SMTP_PORT: int = 8025
    SMTP_STARTTLS: bool = False
    SMTP_USER: str = ""
    SMTP_PASSWORD: str = ""
    MAIL_FROM: str = "Interlock portal <portal@interlock.example>"
    MAIL_MAX_ATTEMPTS: int = Field(default=8, ge=1)
    MAIL_RETRY_BASE_S: int = Field(default=30, ge=1)
    WORKER_POLL_S: float = Field(default=2.0, gt=0)
    SMTP_TIMEOUT_S: float = Field(default=30.0, gt=0)
    # how long a worker holds the emails it claimed; past it, another worker may send them (a worker that
    # died). A send starts only while more than SMTP_TIMEOUT_S + 5 s of the lease is left
    MAIL_LEASE_S: int = Field(default=300, ge=10)
    # days before a due date that a payment reminder goes out
    REMIND_DAYS: int = Field(default=3, ge=0)
    COOKIE_SAMESITE: Literal["lax", "strict"] = "lax"
    # service (companion/app/service): appointments, documents, module shipments, the program's end
    RESCHEDULE_CUTOFF_H: int = Field(default=24, ge=0)  # no self-service change this close to a visit
    REMIND_APPOINTMENT_H: int = Field(default=48, ge=1)  # the reminder email goes out this far ahead
    DOCUMENTS_DIR: str = "portal-documents"  # uploaded and produced files; names chosen by the server
    DOCUMENT_MAX_BYTES: int = Field(default=10 * 1024 * 1024, ge=1024)
    SHIPMENT_LEAD_DAYS: int = Field(default=14, ge=1)  # a replacement module ships this far ahead of expiry
    MODULE_RETURN_DAYS: int = Field(default=10, ge=1)  # the expired module must be back this long after expiry
