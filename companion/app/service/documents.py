"""Documents and notes. Uploads are PDF, JPEG or PNG by their content (the leading bytes and the trailer),
never by the name or the declared type; at most DOCUMENT_MAX_BYTES. The bytes go to a file under
DOCUMENTS_DIR whose name the server chooses (random hex); what the user called the file is only a title.
Only staff delete. Notes go from the driver to their monitoring authority."""

import datetime as dt
import hashlib
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from companion.app.accounts.models import User
from companion.app.accounts.services import audit
from companion.app.core.problems import Problem
from companion.app.portal.config import PortalSettings
from companion.app.records import timeline
from companion.app.service.models import AuthorityNote, Document

MEDIA = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png"}


def sniff(data: bytes) -> str | None:
    """pdf, jpeg or png when the content is one (start and end markers), else None."""
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]:
        return "pdf"
    if data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\x00\r\n").endswith(b"\xff\xd9"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82"):
        return "png"
    return None


def _dir(ps: PortalSettings) -> Path:
    d = Path(ps.DOCUMENTS_DIR).resolve()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _title(name: str) -> str:
    """A display title from what the user called the file: its last path part, printable, short."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in base if ch.isprintable()).strip()[:120]
    return clean or "document"


def store(session: Session, ps: PortalSettings, account_id: int, actor: User | None, data: bytes, name: str,
          origin: str = "upload") -> Document:
    """Keep a file for an account (422 unless PDF/JPEG/PNG by content, 413 past the size limit)."""
    if len(data) > ps.DOCUMENT_MAX_BYTES:
        raise Problem(413, "too-large", "a document is at most %d bytes" % ps.DOCUMENT_MAX_BYTES, field="file")
    if not data:
        raise Problem(422, "empty-file", "the file is empty", field="file")
    kind = sniff(data)
    if kind is None:
        raise Problem(415, "bad-file-type", "a document is a PDF, JPEG or PNG file", field="file")
    stored = secrets.token_hex(16) + "." + ("jpg" if kind == "jpeg" else kind)
    path = _dir(ps) / stored
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
    doc = Document(account_id=account_id, uploaded_by=actor.id if actor else None, kind=kind,
                   title=_title(name), stored_name=stored, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   origin=origin)
    session.add(doc)
    try:
        session.flush()
    except Exception:
        path.unlink(missing_ok=True)
        raise
    if actor is not None:
        audit(session, actor, None, "document-stored", account_id=account_id, document=doc.id, kind=kind)
    return doc


def upload(session: Session, ps: PortalSettings, user: User, data: bytes, name: str) -> Document:
    """A driver uploads a document to their own account."""
    if user.role != "driver" or not user.account_id:
        raise Problem(404, "not-found", "no account")
    return store(session, ps, user.account_id, user, data, name)


def listing(session: Session, user: User, account_id: int | None = None) -> list[Document]:
    """The documents of the driver's account (or, for an authority or staff, of an account they may read)."""
    aid = user.account_id if user.role == "driver" else account_id
    if aid is None or not timeline.may_read(session, user, aid):
        raise Problem(404, "not-found", "no such account")
    return list(session.scalars(select(Document).where(Document.account_id == aid, Document.deleted_at.is_(None))
                                .order_by(Document.id.desc())))


def get(session: Session, user: User, doc_id: int) -> Document:
    """A document the user may read (404 otherwise)."""
    d = session.get(Document, doc_id) if 0 < doc_id < 2**31 else None
    if d is None or d.deleted_at is not None or not timeline.may_read(session, user, d.account_id):
        raise Problem(404, "not-found", "no such document")
    return d


def read(ps: PortalSettings, doc: Document) -> bytes:
    """The document's bytes (the stored name is the server's own: no user input reaches the path)."""
    return (_dir(ps) / doc.stored_name).read_bytes()


def delete(session: Session, ps: PortalSettings, actor: User, doc_id: int) -> Document:
    """Staff delete a document: the file goes, the row stays (audited)."""
    if actor.role != "staff":
        raise Problem(404, "not-found", "no such document")
    d = get(session, actor, doc_id)
    d.deleted_at = dt.datetime.now(dt.UTC)
    session.flush()
    (_dir(ps) / d.stored_name).unlink(missing_ok=True)
    audit(session, actor, None, "document-deleted", document=d.id, account_id=d.account_id)
    return d


# ---- notes to the authority --------------------------------------------------------------------------------
def add_note(session: Session, user: User, body: str) -> AuthorityNote:
    """A note from the driver to their monitoring authority."""
    if user.role != "driver" or not user.account_id:
        raise Problem(404, "not-found", "no account")
    body = (body or "").strip().replace("\r\n", "\n")
    if not body or len(body) > 2000 or any(ord(ch) < 32 and ch != "\n" for ch in body):
        raise Problem(422, "invalid", "a note is 1 to 2000 characters of text", field="body")
    n = AuthorityNote(account_id=user.account_id, author_id=user.id, body=body)
    session.add(n)
    session.flush()
    audit(session, user, user, "authority-note", note=n.id)
    return n


def notes_of(session: Session, account_id: int) -> list[AuthorityNote]:
    """An account's notes to its authority, newest first (callers check who may read them)."""
    return list(session.scalars(select(AuthorityNote).where(AuthorityNote.account_id == account_id)
                                .order_by(AuthorityNote.id.desc()).limit(200)))
