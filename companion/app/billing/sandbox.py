"""The built-in sandbox gateway: it stands in for a card processor and the card networks behind it (none is
reachable from here), with the same shape as a real one (see gateway.py).

Its state is its own: tables in its own SQLite file beside the companion's (on PostgreSQL, `sandbox_*` tables
in the same database, through its own connections), written and committed apart from the companion's
transactions, as a remote processor's would be. It never stores a card number: a token carries the brand, the
last four digits, the expiry and the test behaviour, signed with the sandbox's key.

Test cards (any future expiry, any 3-digit CVC):

| number              | brand      | result                                                          |
|---------------------|------------|-----------------------------------------------------------------|
| 4242 4242 4242 4242 | Visa       | succeeds                                                        |
| 5555 5555 5555 4444 | Mastercard | succeeds                                                        |
| 4000 0000 0000 0002 | Visa       | declined (generic_decline)                                      |
| 4000 0000 0000 9995 | Visa       | declined (insufficient_funds)                                   |
| 4000 0000 0000 0069 | Visa       | declined (expired_card)                                         |
| 4000 0027 6000 3184 | Visa       | needs a second step (the bank's approval page), then succeeds   |
| 4000 0000 0000 0119 | Visa       | the gateway times out: the charge happens, the answer is lost   |
| 3782 822463 10005   | Amex       | tokenized, but the portal accepts Visa and Mastercard only      |

Any other Luhn-valid Visa or Mastercard number succeeds.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from companion.app.billing.gateway import (
    CardInfo,
    Event,
    GatewayError,
    GatewayTimeout,
    Intent,
    sign,
    verify,
)
from companion.app.models import UTCDateTime, utcnow

log = logging.getLogger("companion.sandbox_gateway")
PREFIX = "/sandbox-gateway/v1"

BEHAVIOUR = {
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000002760003184": "requires_action",
    "4000000000000119": "timeout",
}


class SandboxBase(DeclarativeBase):
    """The sandbox's own tables (not the companion's schema)."""


class SandboxIntent(SandboxBase):
    """A payment intent on the sandbox's side."""

    __tablename__ = "sandbox_intents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))
    decline_code: Mapped[str] = mapped_column(String(40), default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SandboxEvent(SandboxBase):
    """A webhook the sandbox has to deliver, retried until the companion answers 2xx."""

    __tablename__ = "sandbox_events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)  # creation time (ns): delivery order
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def luhn_ok(number: str) -> bool:
    """The Luhn check of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str:
    """The card brand from the number's prefix (IIN ranges)."""
    if number.startswith("4"):
        return "visa"
    two, four = int(number[:2]), int(number[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith("6011") or number.startswith("65"):
        return "discover"
    return "other"


def check_card(number: str, exp_month: str, exp_year: str, cvc: str, today: dt.date) -> tuple[str, int, int]:
    """(digits, month, year) of a well-formed, unexpired card, else GatewayError (never echoing the number)."""
    digits = "".join(ch for ch in number if ch not in " -")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise GatewayError("invalid_number", "The card number must be 12 to 19 digits.")
    if not luhn_ok(digits):
        raise GatewayError("invalid_number", "The card number is not valid: please check it.")
    try:
        month, year = int(exp_month), int(exp_year)
    except ValueError:
        raise GatewayError("invalid_expiry", "The expiry month and year must be numbers.") from None
    if year < 100:
        year += 2000
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise GatewayError("invalid_expiry", "The expiry date is not valid.")
    if (year, month) < (today.year, today.month):
        raise GatewayError("expired_card", "The card has expired.")
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise GatewayError("invalid_cvc", "The security code is 3 or 4 digits.")
    return digits, month, year


class SandboxGateway:
    """The sandbox processor: tokens, intents with idempotency keys, refunds, signed webhooks."""

    name = "sandbox"

    def __init__(self, database_url: str, key: bytes, webhook_url: str = "", public_url: str = ""):
        self.key = key
        self.webhook_secret = hmac.new(key, b"webhook", hashlib.sha256).digest()
        self.webhook_url = webhook_url
        self.public_url = public_url
        self.tokenize_url = PREFIX + "/tokens"
        sqlite = database_url.startswith("sqlite")
        self.engine = create_engine(database_url, connect_args={"timeout": 30} if sqlite else {})
        self._maker = sessionmaker(self.engine, expire_on_commit=False)
        self._ready = False
        self.clock = time.time  # tests move it

    def sessions(self) -> Session:
        """A session on the sandbox's own tables (made on first use)."""
        if not self._ready:
            try:
                SandboxBase.metadata.create_all(self.engine, checkfirst=True)
            except Exception:  # noqa: BLE001 -- another process made them at the same moment: check again
                SandboxBase.metadata.create_all(self.engine, checkfirst=True)
            self._ready = True
        return self._maker()

    def close(self) -> None:
        """Dispose of the connections."""
        self.engine.dispose()

    # ---- tokens ----------------------------------------------------------------------------------------------
    def _token(self, brand: str, last4: str, month: int, year: int, behaviour: str) -> str:
        body = json.dumps({"b": brand, "l": last4, "m": month, "y": year, "x": behaviour,
                           "n": secrets.token_hex(6)}, separators=(",", ":")).encode()
        mac = hmac.new(self.key, body, hashlib.sha256).hexdigest()[:32]
        return "tok_" + base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + mac

    def _open(self, token: str) -> dict[str, Any]:
        try:
            b64, mac = token[4:].rsplit(".", 1)
            body = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (ValueError, TypeError):
            raise GatewayError("invalid-token", "unknown card token") from None
        good = hmac.new(self.key, body, hashlib.sha256).hexdigest()[:32]
        if not token.startswith("tok_") or not hmac.compare_digest(good, mac):
            raise GatewayError("invalid-token", "unknown card token")
        data: dict[str, Any] = json.loads(body)
        return data

    def tokenize(self, number: str, exp_month: str, exp_year: str, cvc: str) -> CardInfo:
        """A token for a well-formed card (what the tokenization endpoint does)."""
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        digits, month, year = check_card(number, exp_month, exp_year, cvc, today)
        token = self._token(brand_of(digits), digits[-4:], month, year, BEHAVIOUR.get(digits, "ok"))
        return self.card(token)

    def card(self, token: str) -> CardInfo:
        """What a token's card is."""
        d = self._open(token)
        return CardInfo(token, str(d["b"]), str(d["l"]), int(d["m"]), int(d["y"]))

    # ---- intents ---------------------------------------------------------------------------------------------
    @staticmethod
    def _intent(row: SandboxIntent) -> Intent:
        url = PREFIX + "/intents/%s/authenticate" % row.id if row.status == "requires_action" else ""
        return Intent(row.id, row.amount_cents, row.status, row.decline_code, url, row.refunded_cents)

    def _event(self, s: Session, kind: str, row: SandboxIntent) -> None:
        intent = self._intent(row)
        s.add(SandboxEvent(id="evt_" + secrets.token_hex(12), seq=time.time_ns(), kind=kind, delivered=False, attempts=0,
                           payload={"kind": kind, "intent": intent.__dict__, "metadata": row.meta}))

    def create_intent(self, token: str, amount_cents: int, idempotency_key: str, metadata: dict[str, Any]
                      ) -> Intent:
        """Charge the token's card once per idempotency key (the same key with another amount: an error)."""
        d = self._open(token)
        if not isinstance(amount_cents, int) or amount_cents <= 0:
            raise GatewayError("invalid_amount", "the amount must be a positive number of cents")
        with self.sessions() as s:
            old = s.scalar(select(SandboxIntent).where(SandboxIntent.idempotency_key == idempotency_key))
            if old is not None:
                if old.amount_cents != amount_cents or old.token != token:
                    raise GatewayError("idempotency_mismatch", "this idempotency key was used for another charge")
                return self._intent(old)
            behaviour = str(d["x"])
            today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
            status, code = "succeeded", ""
            if (int(d["y"]), int(d["m"])) < (today.year, today.month) or behaviour == "expired_card":
                status, code = "failed", "expired_card"
            elif behaviour in ("generic_decline", "insufficient_funds"):
                status, code = "failed", behaviour
            elif behaviour == "requires_action":
                status = "requires_action"
            row = SandboxIntent(id="pi_" + secrets.token_hex(12), idempotency_key=idempotency_key,
                                amount_cents=amount_cents, refunded_cents=0, token=token, status=status,
                                decline_code=code, meta=dict(metadata))
            s.add(row)
            try:
                s.flush()
            except IntegrityError:  # the same key at the same moment from another process
                s.rollback()
                return self.create_intent(token, amount_cents, idempotency_key, metadata)
            if status == "succeeded":
                self._event(s, "payment_intent.succeeded", row)
            elif status == "failed":
                self._event(s, "payment_intent.payment_failed", row)
            s.commit()
            if behaviour == "timeout":
                raise GatewayTimeout()
            return self._intent(row)

    def retrieve(self, intent_id: str) -> Intent:
        """An intent's current state."""
        with self.sessions() as s:
            row = s.get(SandboxIntent, intent_id)
            if row is None:
                raise GatewayError("unknown_intent", "no such payment intent")
            return self._intent(row)

    def authenticate(self, intent_id: str, approve: bool) -> Intent:
        """The second step (the bank's approval page): approve or refuse an intent that asked for it."""
        with self.sessions() as s:
            row = s.get(SandboxIntent, intent_id, with_for_update=True)
            if row is None:
                raise GatewayError("unknown_intent", "no such payment intent")
            if row.status == "requires_action":
                row.status = "succeeded" if approve else "failed"
                row.decline_code = "" if approve else "authentication_failed"
                self._event(s, "payment_intent.succeeded" if approve else "payment_intent.payment_failed", row)
                s.commit()
            return self._intent(row)

    def refund(self, intent_id: str, amount_cents: int, idempotency_key: str) -> Intent:
        """Refund part or all of a succeeded intent, once per idempotency key."""
        with self.sessions() as s:
            row = s.get(SandboxIntent, intent_id, with_for_update=True)
            if row is None:
                raise GatewayError("unknown_intent", "no such payment intent")
            marker = "refund:" + idempotency_key
            done = row.meta.get("refunds", [])
            if marker in done:
                return self._intent(row)
            if row.status != "succeeded":
                raise GatewayError("not_refundable", "only a succeeded payment can be refunded")
            if not isinstance(amount_cents, int) or amount_cents <= 0 or \
                    row.refunded_cents + amount_cents > row.amount_cents:
                raise GatewayError("invalid_amount", "the refund is more than what is left of the payment")
            row.refunded_cents += amount_cents
            row.meta = {**row.meta, "refunds": [*done, marker], "last_refund_cents": amount_cents}
            self._event(s, "charge.refunded", row)
            s.commit()
            return self._intent(row)

    # ---- webhooks --------------------------------------------------------------------------------------------
    def signed(self, payload: dict[str, Any], ts: int | None = None) -> tuple[bytes, str]:
        """(body, signature header) of a webhook, as the sandbox sends it."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return body, sign(self.webhook_secret, body, int(self.clock()) if ts is None else ts)

    def verify_webhook(self, body: bytes, signature: str, now: float | None = None) -> Event:
        """The event in a webhook body whose signature and timestamp are good."""
        data = verify(self.webhook_secret, body, signature, self.clock() if now is None else now)
        try:
            i = data["intent"]
            intent = Intent(str(i["id"]), int(i["amount_cents"]), str(i["status"]), str(i.get("decline_code", "")),
                            str(i.get("next_action_url", "")), int(i.get("refunded_cents", 0)))
            return Event(str(data["id"]), str(data["kind"]), intent, int(data.get("created", 0)))
        except (KeyError, TypeError, ValueError):
            raise GatewayError("bad-body", "the webhook body is not an event") from None

    def pending_events(self, limit: int = 100) -> list[tuple[bytes, str]]:
        """Signed bodies of the events not delivered yet, oldest first (marks nothing)."""
        with self.sessions() as s:
            rows = s.scalars(select(SandboxEvent).where(SandboxEvent.delivered.is_(False))
                             .order_by(SandboxEvent.seq).limit(limit)).all()
            return [self.signed({"id": e.id, "kind": e.kind, "created": int(self.clock()), **e.payload})
                    for e in rows]

    def deliver_webhooks(self, client: httpx.Client | None = None) -> int:
        """POST each undelivered event to the webhook URL; an event answered 2xx is delivered. Returns how
        many were."""
        if not self.webhook_url:
            return 0
        delivered = 0
        own = client is None
        client = client or httpx.Client(timeout=10)
        try:
            with self.sessions() as s:
                rows = s.scalars(select(SandboxEvent).where(SandboxEvent.delivered.is_(False))
                                 .order_by(SandboxEvent.seq).limit(100)).all()
                for e in rows:
                    body, sig = self.signed({"id": e.id, "kind": e.kind, "created": int(self.clock()), **e.payload})
                    e.attempts += 1
                    try:
                        r = client.post(self.webhook_url, content=body,
                                        headers={"Gateway-Signature": sig, "Content-Type": "application/json"})
                        if 200 <= r.status_code < 300:
                            e.delivered = True
                            delivered += 1
                    except httpx.HTTPError as exc:
                        log.warning("webhook %s not delivered: %s", e.id, exc)
                    s.commit()
        finally:
            if own:
                client.close()
        return delivered


# ---- the sandbox's own HTTP endpoints (a real processor's hosted card form and approval page) ---------------
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main><h1>%s</h1>%s</main></body></html>"""


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _safe_return(url: str) -> str:
    """Only a path on the companion (no scheme, no host) is a return address."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/portal/billing/methods"
    return url


def router(get_gateway: Any) -> APIRouter:
    """The tokenization endpoint and the second-step page, served beside the companion (in production they
    are the processor's own pages on its own host)."""
    r = APIRouter(prefix=PREFIX, include_in_schema=False)

    @r.post("/tokens")
    def tokens(request: Request, number: str = Form(""), exp_month: str = Form(""), exp_year: str = Form(""),
               cvc: str = Form(""), return_url: str = Form("/portal/billing/methods/new"),
               state: str = Form("")) -> Response:
        """The card form posts here. A browser is sent back to return_url with ?token=... (or ?error=...);
        a client that asks for JSON gets the token as JSON."""
        gw = get_gateway(request)
        back = _safe_return(return_url)
        wants_json = "application/json" in request.headers.get("accept", "")
        try:
            card = gw.tokenize(number, exp_month, exp_year, cvc)
        except GatewayError as exc:
            if wants_json:
                return JSONResponse({"error": exc.code, "message": exc.message}, status_code=402)
            return RedirectResponse(back + "?" + urlencode({"error": exc.code, "state": state}), status_code=303)
        if wants_json:
            return JSONResponse({"token": card.token, "brand": card.brand, "last4": card.last4,
                                 "exp_month": card.exp_month, "exp_year": card.exp_year})
        return RedirectResponse(back + "?" + urlencode({"token": card.token, "state": state}), status_code=303)

    @r.get("/intents/{intent_id}/authenticate")
    def approve_page(request: Request, intent_id: str, return_url: str = "/portal/billing") -> Response:
        """The bank's second step: approve or refuse the payment."""
        gw = get_gateway(request)
        try:
            intent = gw.retrieve(intent_id)
        except GatewayError:
            return HTMLResponse(PAGE % ("Unknown payment", "Unknown payment", ""), status_code=404)
        body = ('<p>Your bank asks you to approve a payment of $%d.%02d.</p>'
                '<form method="post"><input type="hidden" name="return_url" value="%s">'
                '<button name="decision" value="approve">Approve</button> '
                '<button name="decision" value="refuse">Refuse</button></form>'
                % (intent.amount_cents // 100, intent.amount_cents % 100, _esc(_safe_return(return_url))))
        return HTMLResponse(PAGE % ("Approve the payment", "Sandbox bank: approve the payment", body))

    @r.post("/intents/{intent_id}/authenticate")
    def approve(request: Request, intent_id: str, decision: str = Form(""),
                return_url: str = Form("/portal/billing")) -> Response:
        """Record the decision and send the browser back."""
        gw = get_gateway(request)
        try:
            gw.authenticate(intent_id, decision == "approve")
        except GatewayError:
            return HTMLResponse(PAGE % ("Unknown payment", "Unknown payment", ""), status_code=404)
        return RedirectResponse(_safe_return(return_url), status_code=303)

    return r
