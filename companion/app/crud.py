"""Every write the domain API makes, in one place (the sync endpoint's writes are in `sync.py`)."""

import datetime as dt
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

import presets
from companion.app import schedule
from companion.app.accounts.models import AuditEntry, DeviceLink
from companion.app.core import keys, timebase, wire
from companion.app.core.config import Settings
from companion.app.core.keyring import Keyring
from companion.app.core.problems import Problem
from companion.app.models import (
    Account,
    Command,
    DesiredVersion,
    Handset,
    Payment,
    TechToken,
    UnlockCode,
    utcnow,
)
from companion.app.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    CommandPublic,
    DesiredPublic,
    DesiredUpdate,
    HandsetCreate,
    HandsetPublic,
    HandsetUpdate,
)
from interlock import codes
from interlock.timebase import DAY, HOUR

ACTIONS = {"clear": codes.ACTION_CLEAR, "service": codes.ACTION_SERVICE}


# ---- views -------------------------------------------------------------------------------------------------
def account_next_due(account: Account) -> dt.date:
    """The account's next payment due date, as the ledger last derived it (`billing.ledger.recompute`); an
    account the ledger never saw counts from its schedule (422 past the last date the calendar has)."""
    if account.next_due is not None:
        return account.next_due
    try:
        return schedule.due_date(account.first_due, account.schedule, account.periods_paid - account.period_base)
    except (OverflowError, ValueError) as exc:
        raise Problem(422, "invalid", "the next due date would fall after year 9999") from exc


def _new_desired_version(session: Session, h: Handset) -> None:
    """Allocate the handset's next desired-state version (an atomic increment: the row stays locked until
    commit) and record it (unique per handset)."""
    version = session.scalar(update(Handset).where(Handset.id == h.id)
                             .values(desired_version=Handset.desired_version + 1)
                             .returning(Handset.desired_version)
                             .execution_options(synchronize_session=False))
    assert version is not None
    set_committed_value(h, "desired_version", int(version))
    session.add(DesiredVersion(handset_id=h.id, version=int(version)))


def account_public(session: Session, account: Account) -> AccountPublic:
    """An account with its due date and handset ids."""
    ids = (session.scalars(select(Handset.id).where(Handset.account_id == account.id)
                                 .order_by(Handset.id))).all()
    return AccountPublic(
        id=account.id, name=account.name, schedule=account.schedule,  # type: ignore[arg-type]
        first_due=account.first_due, installment_cents=account.installment_cents,
        reset_fee_cents=account.reset_fee_cents, allow_codes=account.allow_codes,
        codes_per_period=account.codes_per_period, service_period_days=account.service_period_days,
        code_fee_cents=account.code_fee_cents or 0, jurisdiction=account.jurisdiction,
        periods_paid=account.periods_paid, credit_cents=account.credit_cents,
        next_due=account_next_due(account), handsets=list(ids))


def handset_public(h: Handset) -> HandsetPublic:
    """A handset as the API shows it."""
    return HandsetPublic(
        device_id=h.id, serial=h.serial, account_id=h.account_id, key_id=h.key_id,
        desired=DesiredPublic(version=h.desired_version, payment_due=timebase.date_of(h.payment_due_day),
                              service_due=timebase.date_of(h.service_due_day),
                              inspection_due=timebase.date_of(h.inspection_due_day),
                              expected_module=h.expected_module, policy=dict(h.policy or {}),
                              preset=h.preset),
        reported=h.reported, reported_version=h.reported_version, last_command_seq=h.last_command_seq,
        lockout_id=h.lockout_id, log_seq=h.log_seq, log_error=h.log_error, syncs=h.syncs,
        last_sync_at=h.last_sync_at)


def command_public(c: Command) -> CommandPublic:
    """A command as the API shows it."""
    return CommandPublic(id=c.id, device_id=c.handset_id, seq=c.seq, kind=c.kind,  # type: ignore[arg-type]
                         arg=c.arg, status=c.status, expires=c.expires,  # type: ignore[arg-type]
                         rc=c.rc, deliveries=c.deliveries, created_at=c.created_at,
                         delivered_at=c.delivered_at, acked_at=c.acked_at)


# ---- accounts ----------------------------------------------------------------------------------------------
def create_account(session: Session, data: AccountCreate) -> Account:
    """Open an account."""
    _check_jurisdiction(data.jurisdiction)
    account = Account(**data.model_dump(), periods_paid=0, credit_cents=0, period_base=0, next_due=data.first_due)
    session.add(account)
    session.flush()
    return account


def update_account(session: Session, account: Account, data: AccountUpdate) -> Account:
    """Change an account's terms. A schedule change starts the new schedule at the first installment not
    charged yet (on its due date under the old one); a new installment amount applies to the installments not
    charged yet; the ledger then derives the due date again and moves the handsets' (`billing.ledger`)."""
    from companion.app.billing import ledger

    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "schedule" in changes and changes["schedule"] != account.schedule:
        start = max(ledger.position(session, account).posted_periods, account.period_base)
        account.first_due = ledger.installment_date(account, start)
        account.period_base = start
    _check_jurisdiction(changes.get("jurisdiction"))
    for name, value in changes.items():
        setattr(account, name, value)
    session.flush()
    ledger.recompute(session, account)
    if "jurisdiction" in changes:
        for h in session.scalars(select(Handset).where(Handset.account_id == account.id)
                                 .order_by(Handset.id).with_for_update()).all():
            apply_preset(session, h, account)
    return account


# ---- state presets -----------------------------------------------------------------------------------------
def _check_jurisdiction(code: str | None) -> None:
    """A 422 problem unless code is None or a state with a preset."""
    if code is not None and code not in presets.states():
        raise Problem(422, "invalid", "no preset for state %s (there are presets for %s)"
                      % (code, ", ".join(presets.states())), field="jurisdiction")


def apply_preset(session: Session, h: Handset, account: Account | None) -> bool:
    """Put the preset of the account's state into the handset's desired policy, pushed on the existing policy
    path (a new companion policy version, a new desired-state version). Returns whether anything changed.

    The preset's values go over the policy the handset has (values it does not set stay). A change of the
    preset in force ("AZ@1" -> "AZ@2", a first preset, another state, or none) is an audited event
    ("preset-changed"). A handset that leaves a state's program keeps the values it had: nothing is loosened
    without a new preset.
    """
    tag = ""
    values = None
    if account is not None and account.jurisdiction:
        preset = presets.load(account.jurisdiction)
        tag = preset.tag()
        values = preset.policy()
    if h.preset == tag:
        return False
    old = h.preset
    if values is not None:
        policy = dict(h.policy or {})
        version = int(policy.get("version", 0)) + 1
        policy.update(values)
        policy["version"] = version
        h.policy = policy
    h.preset = tag
    session.flush()
    if values is not None:
        _new_desired_version(session, h)
    session.add(AuditEntry(actor_id=None, subject_id=None, action="preset-changed",
                           detail={"handset_id": h.id, "account_id": account.id if account else None,
                                   "old": old, "new": tag, "policy_version": int((h.policy or {}).get("version", 0))},
                           at=utcnow()))
    session.flush()
    return True


def refresh_presets(session: Session) -> int:
    """Give every handset of an account with a state the current version of that state's preset (after a preset
    file changed); returns how many handsets changed. `python -m companion presets` runs it."""
    rows = session.execute(select(Handset, Account).join(Account, Handset.account_id == Account.id)
                           .where(Account.jurisdiction.is_not(None)).order_by(Account.id, Handset.id)).all()
    changed = 0
    for h, account in rows:
        lock_account(session, account.id)
        session.refresh(h, with_for_update=True)
        if apply_preset(session, h, account):
            changed += 1
    return changed


# ---- handsets ----------------------------------------------------------------------------------------------
def provision_handset(session: Session, keyring: Keyring, data: HandsetCreate,
                            ) -> tuple[Handset, bytes]:
    """Register a handset with a fresh CSPRNG secret, stored encrypted; returns the row and the secret."""
    # the account row is locked before its due date is read: a payment committing meanwhile would move the
    # account's handsets without this one, leaving it the old due date
    if data.account_id is not None and lock_account(session, data.account_id) is None:
        raise Problem(404, "not-found", "no such account")
    if session.scalar(select(Handset.id).where(Handset.serial == data.serial)) is not None:
        raise Problem(409, "conflict", "a handset with this serial exists")
    secret = keys.new_secret()
    h = Handset(serial=data.serial, account_id=data.account_id, key_id="", secret_nonce=b"", secret_ct=b"",
                desired_version=1, policy={}, payment_due_day=0)
    session.add(h)
    session.flush()  # the device id is bound into the ciphertext
    h.key_id, h.secret_nonce, h.secret_ct = keyring.seal(h.id, secret)
    if data.account_id is not None:
        account = session.get(Account, data.account_id)
        assert account is not None
        h.payment_due_day = timebase.day_of(account_next_due(account))
    session.add(DesiredVersion(handset_id=h.id, version=1))
    session.flush()
    if data.account_id is not None:
        apply_preset(session, h, account)
    return h, secret


def lock_account(session: Session, account_id: int) -> Account | None:
    """The account with its row locked until commit (SQLite's write transaction holds the database).
    PostgreSQL: FOR NO KEY UPDATE, which serialises the writers of the account but not the foreign key checks
    of rows that name it: a handset updated twice in one transaction checks its account key again (a KEY
    SHARE lock), and under FOR UPDATE that waited for a payment that itself waited for the handset (deadlock).
    Lock order: an account before any of its handsets, as a payment takes them."""
    return session.get(Account, account_id, with_for_update={"key_share": True})


def update_handset(session: Session, device_id: int, data: HandsetUpdate) -> Handset:
    """Attach the handset to an account (or detach it; a portal device link of another account is removed).
    The new account's row is locked first, then the handset's, in the order a payment locks them (the account,
    then its handsets): the other order deadlocks with a payment, and an unlocked read of the account could
    take a due date a payment is moving."""
    account = None
    if data.account_id is not None:
        account = lock_account(session, data.account_id)
        if account is None:
            raise Problem(404, "not-found", "no such account")
    h = session.get(Handset, device_id, with_for_update=True)
    if h is None:
        raise Problem(404, "not-found", "no such handset")
    day = timebase.day_of(account_next_due(account)) if account is not None else 0
    if h.account_id != data.account_id:
        # a portal link of the account it leaves goes with it: the old account's driver keeps no way to its
        # codes, reset fee, record or state (staff link it to the new account's devices)
        for link in session.scalars(select(DeviceLink).where(DeviceLink.handset_id == h.id)):
            if link.account_id != data.account_id:
                session.delete(link)
    h.account_id = data.account_id
    if h.payment_due_day != day:
        h.payment_due_day = day
        session.flush()
        _new_desired_version(session, h)
    session.flush()
    apply_preset(session, h, account)
    return h


def set_desired(session: Session, h: Handset, data: DesiredUpdate) -> Handset:
    """Change desired-state fields; the version goes up once when anything changed."""
    changed = False
    fields = data.model_dump(exclude_unset=True)
    for name, column in (("service_due", "service_due_day"), ("inspection_due", "inspection_due_day")):
        if name in fields:
            day = timebase.day_of(fields[name])
            if getattr(h, column) != day:
                setattr(h, column, day)
                changed = True
    if fields.get("expected_module") is not None and h.expected_module != fields["expected_module"]:
        h.expected_module = fields["expected_module"]
        changed = True
    if fields.get("policy") is not None:
        policy = dict(fields["policy"])
        old = dict(h.policy or {})
        policy["version"] = int(old.get("version", 0)) + 1
        h.policy = policy
        changed = True
    session.flush()
    if changed:
        _new_desired_version(session, h)
        session.flush()
    return h


def rotate_keys(session: Session, keyring: Keyring) -> int:
    """Re-encrypt every secret not under the current master key; returns how many were re-encrypted."""
    count = 0
    rows = (session.scalars(select(Handset).where(Handset.key_id != keyring.current))).all()
    for h in rows:
        secret = keyring.open(h.id, h.key_id, h.secret_nonce, h.secret_ct)
        h.key_id, h.secret_nonce, h.secret_ct = keyring.seal(h.id, secret)
        count += 1
    session.flush()
    return count


# ---- commands ----------------------------------------------------------------------------------------------
def _next_seq(session: Session, device_id: int) -> int:
    """Allocate the handset's next command sequence number (the row stays locked until commit)."""
    seq = session.scalar(update(Handset).where(Handset.id == device_id)
                               .values(command_seq=Handset.command_seq + 1).returning(Handset.command_seq))
    assert seq is not None
    return int(seq)


def queue_command(session: Session, settings: Settings, h: Handset, kind: str, arg: Any,
                        ttl_s: int | None = None, dedupe: str | None = None) -> Command:
    """Queue a command for the handset; with a dedupe key, an existing command with that key is returned."""
    if dedupe is not None:
        found = session.scalar(select(Command).where(Command.handset_id == h.id,
                                                           Command.dedupe == dedupe))
        if found is not None and found.status in ("expired", "refused"):
            found.dedupe = None  # it never took effect: a new payment queues a new command
            session.flush()
        elif found is not None:
            return found
    if kind == wire.KIND_POLICY:
        if not isinstance(arg, dict) or "version" not in arg:
            raise Problem(422, "invalid", "a policy command needs a dict with a version")
    elif isinstance(arg, dict):
        raise Problem(422, "invalid", "this command takes an integer argument")
    seq = _next_seq(session, h.id)
    cmd = Command(handset_id=h.id, seq=seq, kind=kind, arg=arg, status="queued",
                  expires=timebase.device_now() + (ttl_s or settings.COMMAND_TTL_S), dedupe=dedupe,
                  deliveries=0)
    try:
        with session.begin_nested():
            session.add(cmd)
            session.flush()
    except IntegrityError:
        # another request (or companion process) queued the same command first: use theirs
        found = session.scalar(select(Command).where(Command.handset_id == h.id,
                                                           Command.dedupe == dedupe))
        if found is None:
            raise
        return found
    return cmd


# ---- payments ----------------------------------------------------------------------------------------------
def record_payment(session: Session, settings: Settings, account: Account, kind: str,
                   amount_cents: int, reference: str, device_id: int | None,
                   lockout_id: int | None, method: str = "backoffice", intent_id: str | None = None
                   ) -> tuple[Payment, Command | None]:
    """Record a payment in the ledger once per reference: an installment payment pays the oldest charges and
    moves the due date; a reset fee is a charge and its payment, and queues a clear bound to the handset's
    current violation lockout (one clear per lockout, however many times it is paid). The caller holds the
    account row locked (the write session's transaction), so one payment at a time derives the position."""
    from companion.app.billing import ledger

    handset_id = device_id if kind == "reset_fee" else None
    ledger.check_amount(amount_cents)

    def first(old: Payment) -> tuple[Payment, Command | None]:
        # the same reference again: the first payment when it is the same payment, else a conflict
        if (old.kind != kind or old.amount_cents != amount_cents or old.handset_id != handset_id
                or (kind == "reset_fee" and lockout_id is not None and old.lockout_id != lockout_id)):
            raise Problem(409, "conflict", "this reference was used for a different payment")
        return old, (session.get(Command, old.command_id) if old.command_id else None)

    def existing() -> Payment | None:
        return session.scalar(select(Payment).where(Payment.account_id == account.id, Payment.side == "payment",
                                                    Payment.reference == reference))

    old = existing()
    if old is not None:
        return first(old)
    h = None
    if kind == "reset_fee":
        if device_id is None:
            raise Problem(422, "invalid", "a reset fee names the handset (device_id)")
        h = session.get(Handset, device_id, with_for_update=True)
        if h is None or h.account_id != account.id:
            raise Problem(404, "not-found", "no such handset on this account")
        if not h.lockout_id:
            raise Problem(409, "no-lockout", "the handset has not reported a violation lockout")
        if lockout_id is not None and lockout_id != h.lockout_id:
            raise Problem(409, "lockout-mismatch", "that lockout is not the handset's current one",
                          current_lockout_id=h.lockout_id)
        if amount_cents < account.reset_fee_cents:
            raise Problem(422, "invalid", "the amount is below the reset fee",
                          reset_fee_cents=account.reset_fee_cents)
        # one fee per lockout: a second payment for it under another reference (two clerks, a payment keyed in
        # twice) would take the money again for the one clear already queued; a refunded one does not count
        back = aliased(Payment)
        paid = session.scalar(select(Payment.id).where(
            Payment.account_id == account.id, Payment.side == "payment", Payment.kind == "reset_fee",
            Payment.handset_id == h.id, Payment.lockout_id == h.lockout_id, Payment.amount_cents > 0,
            ~exists().where(back.charge_id == Payment.charge_id, back.method == "refund")).limit(1))
        if paid is not None:
            raise Problem(409, "fee-paid", "the reset fee for this lockout is paid already (payment %d)" % paid,
                          payment_id=paid)
    elif kind != "installment":
        raise Problem(422, "invalid", "the kind is installment or reset_fee", field="kind")
    # the reference first: a concurrent request with the same reference finds it taken and changes nothing
    try:
        with session.begin_nested():
            charge = None
            if h is not None:
                charge = ledger.post_charge(session, account, "reset_fee", amount_cents, "charge:" + reference,
                                            handset_id=h.id, note="violation reset fee", lockout_id=h.lockout_id)
            payment = ledger.post_payment(session, account, method, amount_cents, reference, kind=kind,
                                          handset_id=handset_id, charge_id=charge.id if charge else None,
                                          intent_id=intent_id)
    except IntegrityError:
        old = existing()
        if old is None:
            raise
        return first(old)
    cmd = None
    if h is not None:
        payment.lockout_id = h.lockout_id
        cmd = queue_command(session, settings, h, "clear", h.lockout_id, dedupe="clear:" + str(h.lockout_id))
        payment.command_id = cmd.id
    pos = ledger.recompute(session, account)
    if kind == "installment":
        payment.due_after = pos.next_due
    session.flush()
    return payment, cmd


# ---- unlock codes and technician tokens --------------------------------------------------------------------
def codes_left(session: Session, account: Account, h: Handset) -> int:
    """How many more codes the account's policy allows the handset this service period (0: none, or codes not
    allowed). A check before charging for a code; `issue_code` checks again under the handset's row lock."""
    if not account.allow_codes or account.codes_per_period <= 0:
        return 0
    today = timebase.device_now() // DAY
    used = session.scalar(select(func.count()).select_from(UnlockCode).where(
        UnlockCode.handset_id == h.id, UnlockCode.issue_day >= _code_period_start(account, h, today)))
    return max(account.codes_per_period - int(used or 0), 0)


def _code_period_start(account: Account, h: Handset, today: int) -> int:
    period = account.service_period_days
    if h.service_due_day:
        # the service period ends at the next service due day
        start = h.service_due_day - period * ((h.service_due_day - today + period - 1) // period)
        if start > today:
            start -= period
        return int(start)
    return today - today % period


def issue_code(session: Session, keyring: Keyring, settings: Settings, h: Handset,
                     action: str) -> tuple[UnlockCode, int]:
    """Issue the next unlock code where the account's policy allows codes, within the per-period limit."""
    account = session.get(Account, h.account_id) if h.account_id else None
    if account is None:
        raise Problem(409, "no-account", "the handset belongs to no account")
    if not account.allow_codes or account.codes_per_period <= 0:
        raise Problem(403, "codes-not-allowed", "this account's policy does not allow unlock codes")
    now = timebase.device_now()
    today = now // DAY
    start = _code_period_start(account, h, today)
    # allocate the counter first: the row lock it takes makes the count below exact under concurrency
    # (a refusal rolls the allocation back)
    counter = session.scalar(update(Handset).where(Handset.id == h.id)
                                   .values(code_counter=Handset.code_counter + 1)
                                   .returning(Handset.code_counter))
    assert counter is not None
    used = session.scalar(select(func.count()).select_from(UnlockCode).where(
        UnlockCode.handset_id == h.id, UnlockCode.issue_day >= start))
    if (used or 0) >= account.codes_per_period:
        raise Problem(429, "code-limit", "the codes for this service period are used up",
                      codes_per_period=account.codes_per_period)
    issue_hour = now // HOUR
    pk = keyring.purpose(h.id, h.key_id, h.secret_nonce, h.secret_ct)
    code = code_for(pk.unlock, h.id, ACTIONS[action], int(counter), issue_hour)
    row = UnlockCode(handset_id=h.id, action=ACTIONS[action], counter=int(counter), issue_hour=issue_hour,
                     issue_day=today)
    session.add(row)
    session.flush()
    return row, code


def code_for(unlock_key: bytes, device_id: int, action: int, counter: int, issue_hour: int) -> int:
    """The unlock code (interlock.codes.code_for, with the standard library's HMAC)."""
    return int(codes.code_for(unlock_key, device_id, action, counter, issue_hour, mac=keys.mac))


def issue_tech_token(session: Session, keyring: Keyring, h: Handset, tech_id: int,
                           lifetime_s: int) -> tuple[int, bytes]:
    """(expires, token key) for one technician on one handset; the issue is kept for audit."""
    expires = timebase.device_now() + lifetime_s
    pk = keyring.purpose(h.id, h.key_id, h.secret_nonce, h.secret_ct)
    session.add(TechToken(handset_id=h.id, tech_id=tech_id, expires=expires))
    session.flush()
    return expires, keys.tech_token_key(pk.tech, h.id, tech_id, expires)
