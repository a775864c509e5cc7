"""The payment gateway interface, shaped like the real processors' (Stripe, Adyen, Braintree):

- card tokens: the card form posts the number to the gateway's own tokenization endpoint, which sends the
  browser back with a token; the companion only ever holds the token, the brand, the last four digits and
  the expiry (`CardInfo`);
- payment intents created with an idempotency key: the same key again returns the same intent and never
  charges twice; an intent succeeds, fails with a decline code, or needs a second step (`next_action_url`);
- asynchronous confirmation by webhooks signed with HMAC-SHA256 over "timestamp.body", sent in the header
  `Gateway-Signature: t=<unix seconds>,v1=<hex>`; events older than the replay window are refused;
- refunds, also with idempotency keys.

A deployment plugs in a real processor by implementing `Gateway` (and pointing `TOKENIZE_URL` at the
processor's hosted card form); the built-in `SandboxGateway` (sandbox.py) is the default.
"""

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

SIGNATURE_HEADER = "Gateway-Signature"
REPLAY_WINDOW_S = 300


class GatewayError(Exception):
    """The gateway refused or failed a request (with a code the driver may see in words)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class GatewayTimeout(GatewayError):
    """The gateway did not answer in time: the charge may or may not have happened. Retrying with the same
    idempotency key is always safe."""

    def __init__(self) -> None:
        super().__init__("timeout", "the payment processor did not answer in time")


@dataclass
class CardInfo:
    """What a token says about its card (never the number)."""

    token: str
    brand: str  # visa | mastercard | amex | discover | other
    last4: str
    exp_month: int
    exp_year: int


@dataclass
class Intent:
    """A payment intent as the gateway reports it."""

    id: str
    amount_cents: int
    status: str  # succeeded | failed | requires_action | processing
    decline_code: str = ""
    next_action_url: str = ""
    refunded_cents: int = 0


@dataclass
class Event:
    """A verified webhook event."""

    id: str
    kind: str  # payment_intent.succeeded | payment_intent.payment_failed | charge.refunded
    intent: Intent
    created: int


class Gateway(Protocol):
    """What the billing service needs from a payment processor."""

    name: str
    tokenize_url: str

    def card(self, token: str) -> CardInfo:
        """What the token's card is (GatewayError "invalid-token" for a token the gateway never issued)."""

    def create_intent(self, token: str, amount_cents: int, idempotency_key: str, metadata: dict[str, Any]
                      ) -> Intent:
        """Charge the card (once per idempotency key); may raise GatewayTimeout."""

    def retrieve(self, intent_id: str) -> Intent:
        """An intent's current state."""

    def refund(self, intent_id: str, amount_cents: int, idempotency_key: str) -> Intent:
        """Refund part or all of a succeeded intent (once per idempotency key)."""

    def verify_webhook(self, body: bytes, signature: str, now: float | None = None) -> Event:
        """The event in a webhook body, after checking its signature and age (GatewayError otherwise)."""


# ---- webhook signatures (shared by the sandbox and the checks) -------------------------------------------
def sign(secret: bytes, body: bytes, ts: int) -> str:
    """The signature header value for body sent at ts."""
    mac = hmac.new(secret, str(ts).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (ts, mac)


def verify(secret: bytes, body: bytes, header: str, now: float | None = None,
           window_s: int = REPLAY_WINDOW_S) -> dict[str, Any]:
    """The JSON body of a webhook whose signature is good and whose timestamp is within the window."""
    parts: dict[str, str] = {}
    for item in (header or "").split(","):
        k, _, v = item.strip().partition("=")
        if k and v:
            parts.setdefault(k, v)
    try:
        ts = int(parts.get("t", ""))
    except ValueError:
        raise GatewayError("bad-signature", "the webhook signature header is malformed") from None
    good = sign(secret, body, ts).split("v1=", 1)[1]
    if not hmac.compare_digest(good, parts.get("v1", "")):
        raise GatewayError("bad-signature", "the webhook signature does not match")
    now = time.time() if now is None else now
    if abs(now - ts) > window_s:
        raise GatewayError("stale", "the webhook timestamp is outside the %d s replay window" % window_s)
    try:
        data = json.loads(body)
    except ValueError:
        raise GatewayError("bad-body", "the webhook body is not JSON") from None
    if not isinstance(data, dict):
        raise GatewayError("bad-body", "the webhook body is not an object")
    return data
