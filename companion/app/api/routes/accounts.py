"""Accounts and their payments."""

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from companion.app import crud
from companion.app.api.deps import AdminDep, SessionDep, SettingsDep, WriteSessionDep
from companion.app.core.problems import Problem
from companion.app.models import Account, Payment
from companion.app.schemas import AccountCreate, AccountPublic, AccountUpdate, PaymentCreate, PaymentPublic

router = APIRouter(prefix="/accounts", tags=["accounts"])

AccountId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _account(session: SessionDep | WriteSessionDep, account_id: int, lock: bool = False) -> Account:
    # lock: the row stays locked until commit (see crud.lock_account)
    account = crud.lock_account(session, account_id) if lock else session.get(Account, account_id)
    if account is None:
        raise Problem(404, "not-found", "no such account")
    return account


@router.post("", status_code=201)
def create_account(session: WriteSessionDep, _admin: AdminDep, data: AccountCreate) -> AccountPublic:
    """Open an account with its payment schedule."""
    account = crud.create_account(session, data)
    out = crud.account_public(session, account)
    session.commit()
    return out


@router.get("/{account_id}")
def read_account(session: SessionDep, _admin: AdminDep, account_id: AccountId) -> AccountPublic:
    """An account with its next due date and its handsets."""
    return crud.account_public(session, _account(session, account_id))


@router.patch("/{account_id}")
def update_account(session: WriteSessionDep, _admin: AdminDep, account_id: AccountId,
                         data: AccountUpdate) -> AccountPublic:
    """Change an account's terms."""
    account = crud.update_account(session, _account(session, account_id, lock=True), data)
    out = crud.account_public(session, account)
    session.commit()
    return out


@router.post("/{account_id}/payments", status_code=201)
def record_payment(session: WriteSessionDep, settings: SettingsDep, _admin: AdminDep,
                         account_id: AccountId, data: PaymentCreate) -> PaymentPublic:
    """Record a payment: an installment moves the due date, a reset fee queues a remote clear for the
    handset's current violation lockout. Repeating a reference returns the first payment."""
    account = _account(session, account_id, lock=True)
    payment, cmd = crud.record_payment(session, settings, account, data.kind, data.amount_cents,
                                       data.reference, data.device_id, data.lockout_id, method=data.method)
    out = _payment_public(payment, cmd)
    session.commit()
    return out


@router.get("/{account_id}/payments")
def list_payments(session: SessionDep, _admin: AdminDep, account_id: AccountId) -> list[PaymentPublic]:
    """The account's payments, oldest first (the ledger's payment entries; its charges and refunds are in
    the portal's billing history)."""
    _account(session, account_id)
    rows = (session.scalars(select(Payment).where(
        Payment.account_id == account_id, Payment.side == "payment", Payment.amount_cents > 0,
        Payment.kind.in_(("installment", "reset_fee"))).order_by(Payment.id))).all()
    out = []
    for p in rows:
        cmd = session.get(crud.Command, p.command_id) if p.command_id else None
        out.append(_payment_public(p, cmd))
    return out


def _payment_public(p: Payment, cmd: crud.Command | None) -> PaymentPublic:
    return PaymentPublic(id=p.id, account_id=p.account_id, kind=p.kind,  # type: ignore[arg-type]
                         method=p.method, amount_cents=p.amount_cents, reference=p.reference or "entry:%d" % p.id,
                         device_id=p.handset_id,
                         lockout_id=p.lockout_id, next_due=p.due_after,
                         command=crud.command_public(cmd) if cmd else None, created_at=p.created_at)
