"""Handsets: provisioning, desired state, commands, unlock codes, technician tokens, uploaded log."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from companion.app import crud
from companion.app.api.deps import AdminDep, KeyringDep, SessionDep, SettingsDep, WriteSessionDep
from companion.app.core import problems
from companion.app.core.problems import Problem
from companion.app.models import Command, Handset, LogRecord, LogTamper
from companion.app.schemas import (
    CodeCreate,
    CodePublic,
    CommandCreate,
    CommandPublic,
    DesiredUpdate,
    HandsetCreate,
    HandsetProvisioned,
    HandsetPublic,
    HandsetUpdate,
    LogRecordPublic,
    LogTamperPublic,
    TechTokenCreate,
    TechTokenPublic,
)

router = APIRouter(prefix="/handsets", tags=["handsets"])

DeviceId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _handset(session: SessionDep | WriteSessionDep, device_id: int, lock: bool = False) -> Handset:
    # lock: the row stays locked (PostgreSQL FOR UPDATE; SQLite's write transaction holds the database)
    h = session.get(Handset, device_id, with_for_update=lock)
    if h is None:
        raise Problem(404, "not-found", "no such handset")
    return h


@router.post("", status_code=201)
def provision_handset(session: WriteSessionDep, keyring: KeyringDep, _admin: AdminDep,
                            data: HandsetCreate) -> HandsetProvisioned:
    """Register a handset: a new CSPRNG secret, stored encrypted; the secret is shown this once."""
    h, secret = crud.provision_handset(session, keyring, data)
    out = HandsetProvisioned(**crud.handset_public(h).model_dump(), secret=secret.hex())
    session.commit()
    return out


@router.get("")
def list_handsets(session: SessionDep, _admin: AdminDep,
                        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[HandsetPublic]:
    """Handsets by device id."""
    rows = (session.scalars(select(Handset).order_by(Handset.id).offset(offset).limit(limit))).all()
    return [crud.handset_public(h) for h in rows]


@router.post("/keys/rotate")
def rotate_keys(session: WriteSessionDep, keyring: KeyringDep, _admin: AdminDep) -> dict[str, int]:
    """Re-encrypt every handset secret under the current master key (after MASTER_KEY_ID changed)."""
    count = crud.rotate_keys(session, keyring)
    session.commit()
    return {"reencrypted": count}


@router.get("/{device_id}")
def read_handset(session: SessionDep, _admin: AdminDep, device_id: DeviceId) -> HandsetPublic:
    """A handset: desired state, last report, sync bookkeeping."""
    return crud.handset_public(_handset(session, device_id))


@router.patch("/{device_id}")
def update_handset(session: WriteSessionDep, _admin: AdminDep, device_id: DeviceId,
                         data: HandsetUpdate) -> HandsetPublic:
    """Attach the handset to an account (its payment due date follows the account)."""
    h = crud.update_handset(session, _handset(session, device_id, lock=True), data)
    out = crud.handset_public(h)
    session.commit()
    return out


@router.patch("/{device_id}/desired")
def set_desired(session: WriteSessionDep, _admin: AdminDep, device_id: DeviceId,
                      data: DesiredUpdate) -> HandsetPublic:
    """Change the desired state (service and inspection due dates, expected module, policy)."""
    h = crud.set_desired(session, _handset(session, device_id, lock=True), data)
    out = crud.handset_public(h)
    session.commit()
    return out


@router.post("/{device_id}/commands", status_code=201)
def queue_command(session: WriteSessionDep, settings: SettingsDep, _admin: AdminDep,
                        device_id: DeviceId, data: CommandCreate) -> CommandPublic:
    """Queue a command; it stays open until the handset acknowledges it or it expires."""
    h = _handset(session, device_id)
    dedupe = "clear:" + str(data.arg) if data.kind == "clear" else None
    cmd = crud.queue_command(session, settings, h, data.kind, data.arg, data.ttl_s, dedupe)
    out = crud.command_public(cmd)
    session.commit()
    return out


@router.get("/{device_id}/commands")
def list_commands(session: SessionDep, _admin: AdminDep, device_id: DeviceId) -> list[CommandPublic]:
    """The handset's commands by sequence number."""
    _handset(session, device_id)
    rows = (session.scalars(select(Command).where(Command.handset_id == device_id)
                                  .order_by(Command.seq))).all()
    return [crud.command_public(c) for c in rows]


@router.post("/{device_id}/unlock-codes", status_code=201, responses=problems.responses(403, 429))
def issue_code(session: WriteSessionDep, keyring: KeyringDep, settings: SettingsDep, _admin: AdminDep,
                     device_id: DeviceId, data: CodeCreate) -> CodePublic:
    """Issue an unlock code where the account's policy allows codes, at most N per service period."""
    h = _handset(session, device_id)
    row, code = crud.issue_code(session, keyring, settings, h, data.action)
    session.commit()
    return CodePublic(device_id=h.id, action=data.action, counter=row.counter, issue_hour=row.issue_hour,
                      valid_hours=settings.CODE_VALID_H, code=f"{code:08d}")


@router.post("/{device_id}/technician-tokens", status_code=201)
def issue_tech_token(session: WriteSessionDep, keyring: KeyringDep, settings: SettingsDep,
                           _admin: AdminDep, device_id: DeviceId, data: TechTokenCreate) -> TechTokenPublic:
    """A short-lived token for one technician on this handset (default 8 h, at most 24 h)."""
    h = _handset(session, device_id)
    lifetime = data.lifetime_s or settings.TECH_TOKEN_DEFAULT_S
    if lifetime > settings.TECH_TOKEN_MAX_S:
        raise Problem(422, "invalid", f"lifetime_s exceeds {settings.TECH_TOKEN_MAX_S}")
    expires, key = crud.issue_tech_token(session, keyring, h, data.tech_id, lifetime)
    session.commit()
    return TechTokenPublic(device_id=h.id, tech_id=data.tech_id, expires=expires, token_key=key.hex())


@router.get("/{device_id}/log")
def read_log(session: SessionDep, _admin: AdminDep, device_id: DeviceId,
                   after: Annotated[int, Query(ge=0, le=2**32)] = 0,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[LogRecordPublic]:
    """Uploaded log records with seq > after, in order."""
    _handset(session, device_id)
    rows = (session.scalars(select(LogRecord).where(LogRecord.handset_id == device_id,
                                                          LogRecord.seq > after)
                                  .order_by(LogRecord.seq).limit(limit))).all()
    return [LogRecordPublic.model_validate(r) for r in rows]


@router.get("/{device_id}/log/tampering")
def read_log_tampering(session: SessionDep, _admin: AdminDep, device_id: DeviceId) -> list[LogTamperPublic]:
    """Uploads that differed from log records already accepted (the stored records were kept), oldest first."""
    _handset(session, device_id)
    rows = (session.scalars(select(LogTamper).where(LogTamper.handset_id == device_id)
                                  .order_by(LogTamper.id))).all()
    return [LogTamperPublic.model_validate(r) for r in rows]
