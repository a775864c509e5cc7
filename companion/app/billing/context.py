"""Billing's settings (environment variables prefixed BILLING_) and what every billing call needs: the portal
context (mail, links) and the gateway."""

import hashlib
import hmac
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from companion.app.billing.gateway import Gateway
from companion.app.core.config import Settings
from companion.app.portal.config import PortalSettings
from companion.app.portal.context import PortalContext


class BillingSettings(BaseSettings):
    """The gateway, auto-pay's retry schedule, reminders."""

    model_config = SettingsConfigDict(env_prefix="BILLING_", env_file=".env", env_ignore_empty=True,
                                      extra="ignore")

    GATEWAY: str = "sandbox"
    # where the sandbox keeps its own state (default: a file beside the SQLite database, or the same PostgreSQL
    # database through its own connections) and where it delivers webhooks (default: BASE_URL's webhook route)
    SANDBOX_DATABASE_URL: str = ""
    WEBHOOK_URL: str = ""
    # auto-pay retries a declined installment after these many days, then stops and leaves it to the driver
    RETRY_DAYS: tuple[int, ...] = (1, 3, 5)
    # a card expiring before the next due date is flagged this many days ahead
    EXPIRY_WARN_DAYS: int = Field(default=30, ge=0)
    # changing the primary card this close to a due date warns that the change may miss it
    PRIMARY_WARN_DAYS: int = Field(default=2, ge=0)
    # auto-pay asks the gateway about this many charges of a batch at once (a processor answers each in
    # hundreds of milliseconds; one at a time would bound a worker at a few charges a second). SQLite: 1.
    GATEWAY_CONCURRENCY: int = Field(default=8, ge=1, le=64)


@dataclass
class BillingContext:
    """The portal context, billing's settings and the gateway."""

    ctx: PortalContext
    bs: BillingSettings
    gateway: Gateway


def sandbox_url(settings: Settings, bs: BillingSettings) -> str:
    """The sandbox gateway's own database."""
    if bs.SANDBOX_DATABASE_URL:
        return bs.SANDBOX_DATABASE_URL
    url = settings.sync_database_url
    if settings.is_sqlite:
        path = url.split("///", 1)[1] if "///" in url else ""
        return "sqlite:///" + (path + "-gateway.db" if path and path != ":memory:" else ":memory:")
    return url


def make_gateway(settings: Settings, ps: PortalSettings, bs: BillingSettings) -> Gateway:
    """The configured gateway (the sandbox unless a deployment plugs in another)."""
    from companion.app.billing.sandbox import SandboxGateway

    if bs.GATEWAY != "sandbox":
        raise ValueError("BILLING_GATEWAY names no gateway this build has: " + bs.GATEWAY)
    _kid, keys = settings.master_keys()
    key = hmac.new(keys[_kid], b"interlock billing sandbox gateway v1", hashlib.sha256).digest()
    hook = bs.WEBHOOK_URL or ps.BASE_URL.rstrip("/") + settings.API_V1_STR + "/billing/webhook"
    return SandboxGateway(sandbox_url(settings, bs), key, webhook_url=hook)


def build(settings: Settings, ctx: PortalContext, bs: BillingSettings | None = None) -> BillingContext:
    """A billing context for one app or worker."""
    bs = bs or BillingSettings()
    return BillingContext(ctx, bs, make_gateway(settings, ctx.ps, bs))
