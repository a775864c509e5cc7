"""The portal's pages. Each handler reads the form, calls the service layer, and renders or redirects; the
rules (ownership, limits, tokens, throttling) are in the services."""

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from companion.app import i18n
from companion.app.accounts import services as accounts
from companion.app.accounts import staff
from companion.app.accounts.models import DeviceLink, User
from companion.app.api.deps import SessionDep, WriteSessionDep
from companion.app.core.problems import Problem
from companion.app.models import Account
from companion.app.notifications import services as notes
from companion.app.notifications.messages import N_, OPTIONAL_EMAIL
from companion.app.portal import dashboard_parts, reads
from companion.app.portal import help as helpdesk
from companion.app.portal import services as portal
from companion.app.schemas import AccountCreate
from companion.app.web.session import (
    CSRF_COOKIE,
    LANG_COOKIE,
    SESSION_COOKIE,
    SignInRequired,
    Visitor,
    form_error,
    read_connection,
    redirect,
    render,
    run_read,
    session_token_hash,
    set_cookie,
    signed_in,
    submit,
    visitor,
)

router = APIRouter(prefix="/portal", include_in_schema=False)
F = Annotated[str, Form()]
Id = int


def _v(request: Request, session: Session) -> Visitor:
    return visitor(request, session)


def _same(password: str, confirm: str) -> str:
    """The new password, when typed the same twice."""
    if password != confirm:
        raise Problem(422, "mismatch", "the passwords differ", field="confirm")
    return password


# ---- signed out --------------------------------------------------------------------------------------------
@router.get("")
@router.get("/")
def home(request: Request, session: SessionDep) -> Response:
    """The dashboard when signed in, else the sign-in page."""
    v = _v(request, session)
    if v.user is None:
        return redirect("/portal/sign-in")
    return redirect("/portal/staff" if v.user.role == "staff" else "/portal/dashboard")


@router.get("/sign-in")
def sign_in_form(request: Request, session: SessionDep) -> Response:
    """The sign-in form."""
    v = _v(request, session)
    if v.user is not None:
        return redirect("/portal/")
    return render(v, "sign_in.html")


@router.post("/sign-in")
def sign_in(request: Request, session: WriteSessionDep, identity: F = "", password: F = "",
            csrf: F = "") -> Response:
    """Sign in with email (or customer id) and password."""
    v = _v(request, session)

    def start() -> tuple[User, str]:
        user = accounts.authenticate(session, v.ctx, identity, password, v.address())
        return user, accounts.start_session(session, v.ctx, user)[0]

    def signed(started: tuple[User, str]) -> Response:
        user, token = started
        response = redirect("/portal/password" if user.must_change_password else "/portal/")
        set_cookie(request, response, SESSION_COOKIE, token)
        response.delete_cookie(CSRF_COOKIE, path="/portal")
        return response

    return submit(v, session, csrf, start, signed,
                  lambda exc: form_error(v, "sign_in.html", exc, identity=identity[:254]))


@router.post("/sign-out")
def sign_out(request: Request, session: WriteSessionDep, csrf: F = "") -> Response:
    """End the session."""
    v = _v(request, session)
    if v.user is None:
        return redirect("/portal/sign-in")

    def signed_out(_: None) -> Response:
        response = redirect("/portal/sign-in")
        response.delete_cookie(SESSION_COOKIE, path="/portal")
        return response

    return submit(v, session, csrf, lambda: accounts.end_session(session, request.cookies.get(SESSION_COOKIE)),
                  signed_out, lambda exc: form_error(v, "message.html", exc))


@router.post("/language")
def language(request: Request, session: WriteSessionDep, lang: F = "", csrf: F = "",
             back: F = "/portal/") -> Response:
    """Switch the language (kept in the profile when signed in, in a cookie otherwise)."""
    v = _v(request, session)
    if lang not in i18n.LANGUAGES:
        lang = i18n.DEFAULT

    def keep() -> None:
        if v.user is not None:
            portal.update_profile(session, v.user, {"language": lang})

    def back_to(_: None) -> Response:
        target = back if back.startswith("/portal") and "//" not in back and "\\" not in back else "/portal/"
        response = redirect(target)
        set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
        return response

    return submit(v, session, csrf, keep, back_to, lambda exc: form_error(v, "message.html", exc))


@router.get("/claim/{token}")
def claim_form(request: Request, session: SessionDep, token: str) -> Response:
    """Set the first password from the emailed link."""
    v = _v(request, session)
    row = accounts.peek_token(session, token, "claim")
    if row is None:
        return render(v, "message.html", 400, error=v_t(v, "bad-token"))
    return render(v, "claim.html", token=token)


@router.post("/claim/{token}")
def claim(request: Request, session: WriteSessionDep, token: str, password: F = "", confirm: F = "",
          csrf: F = "") -> Response:
    """Claim the account and sign in."""
    v = _v(request, session)

    def start() -> str:
        _same(password, confirm)
        return accounts.start_session(session, v.ctx, accounts.claim(session, v.ctx, token, password))[0]

    def signed(sid: str) -> Response:
        response = redirect("/portal/")
        set_cookie(request, response, SESSION_COOKIE, sid)
        return response

    return submit(v, session, csrf, start, signed, lambda exc: form_error(v, "claim.html", exc, token=token))


@router.get("/reset")
def reset_request_form(request: Request, session: SessionDep) -> Response:
    """Ask for a reset link."""
    return render(_v(request, session), "reset_request.html")


@router.post("/reset")
def reset_request(request: Request, session: WriteSessionDep, email: F = "", csrf: F = "") -> Response:
    """Email a reset link if the address has an account; the same page either way."""
    v = _v(request, session)
    return submit(v, session, csrf, lambda: accounts.request_reset(session, v.ctx, email, v.address()),
                  lambda _: render(v, "message.html", info=v_t(v, "reset-sent")),
                  lambda exc: form_error(v, "reset_request.html", exc))


@router.get("/reset/{token}")
def reset_form(request: Request, session: SessionDep, token: str) -> Response:
    """The new-password form of a reset link."""
    v = _v(request, session)
    if accounts.peek_token(session, token, "reset") is None:
        return render(v, "message.html", 400, error=v_t(v, "bad-token"))
    return render(v, "reset_form.html", token=token)


@router.post("/reset/{token}")
def reset(request: Request, session: WriteSessionDep, token: str, password: F = "", confirm: F = "",
          csrf: F = "") -> Response:
    """Set the new password; every session ends; sign in again."""
    v = _v(request, session)
    return submit(v, session, csrf,
                  lambda: accounts.reset_password(session, v.ctx, token, _same(password, confirm)),
                  lambda _: render(v, "message.html", info=v_t(v, "reset-done"), link="/portal/sign-in"),
                  lambda exc: form_error(v, "reset_form.html", exc, token=token))


@router.get("/verify-email/{token}")
def verify_email_form(request: Request, session: SessionDep, token: str) -> Response:
    """Confirm the new address (a button, so a mail scanner opening the link changes nothing)."""
    v = _v(request, session)
    row = accounts.peek_token(session, token, "email")
    if row is None:
        return render(v, "message.html", 400, error=v_t(v, "bad-token"))
    return render(v, "verify_email.html", token=token, new_email=row.payload)


@router.post("/verify-email/{token}")
def verify_email(request: Request, session: WriteSessionDep, token: str, csrf: F = "") -> Response:
    """Make the new address the login."""
    v = _v(request, session)
    return submit(v, session, csrf, lambda: accounts.verify_email_change(session, v.ctx, token),
                  lambda user: render(v, "message.html", info=v_t(v, "email-verified") % {"email": user.email},
                                      link="/portal/"),
                  lambda exc: form_error(v, "message.html", exc))


# ---- password ----------------------------------------------------------------------------------------------
@router.get("/password")
def password_form(request: Request, session: SessionDep) -> Response:
    """Change the password (forced after a temporary password)."""
    v = _v(request, session)
    if v.user is None:
        return redirect("/portal/sign-in")
    return render(v, "password.html")


@router.post("/password")
def password(request: Request, session: WriteSessionDep, current: F = "", new: F = "", confirm: F = "",
             csrf: F = "") -> Response:
    """Change the password; other sessions end."""
    v = _v(request, session)
    user = v.user
    if user is None:
        return redirect("/portal/sign-in")
    return submit(v, session, csrf,
                  lambda: accounts.change_password(session, v.ctx, user, current, _same(new, confirm),
                                                   keep=v.websession),
                  lambda _: render(v, "message.html", info=v_t(v, "password-changed"), link="/portal/"),
                  lambda exc: form_error(v, "password.html", exc))


# ---- driver ------------------------------------------------------------------------------------------------
async def dashboard(request: Request) -> Response:
    """One card per device: payment, service, module, handset state, last sync; unread notifications.
    The most visited page, so its path is short: a plain route at the front of the app's routes (install),
    no dependency machinery, one statement for session, user and dashboard (portal/reads.py); on PostgreSQL
    on an asyncpg pool of its own, read together with the other dashboards waiting for a connection
    (portal/batched.py)."""
    pg = getattr(request.app.state, "portal_reads", None)
    if pg is None:
        return await run_read(request, _dashboard)
    token_hash = session_token_hash(request)
    if token_hash is None:
        raise SignInRequired()
    found = await pg.signed_in(token_hash)  # with the other dashboards waiting for a connection, if any
    # the page from its rows reads nothing more: on the event loop (a hop to the thread pool cost more than it)
    return _dashboard_page(request, found)


def _dashboard(request: Request) -> Response:
    token_hash = session_token_hash(request)
    if token_hash is None:
        raise SignInRequired()
    with read_connection(request) as conn:
        found = reads.by_session(conn, token_hash)
    return _dashboard_page(request, found)


def _dashboard_page(request: Request, found: reads.SignedIn | None) -> Response:
    if found is None:
        raise SignInRequired()
    v = signed_in(request, request.app.state.portal, found.user, None, found.csrf)
    user = v.require("driver", "authority")
    if user.role == "authority":
        return redirect("/portal/authority")
    return render(v, "dashboard.html", **dashboard_values(v, found.rows))


def dashboard_values(v: Visitor, rows: Sequence[Any]) -> dict[str, Any]:
    """What dashboard.html shows, from the rows of the dashboard's one statement (portal/reads.py): the cards
    and next payment, billing's lines, the next service, the program's end, built as the JSON API builds them
    (portal/dashboard_parts.py); nothing here reads the database (bench/portal.py times this and the page
    through it)."""
    p = dashboard_parts.parts_of(v.ctx, v.require("driver"), rows)
    return {"d": p.d, "billing": p.billing, "ns": p.ns, "prog": p.prog}


@router.get("/devices/{link_id}/code")
def code_form(request: Request, session: SessionDep, link_id: Id) -> Response:
    """Request an unlock code for a device."""
    v = _v(request, session)
    user = v.require("driver")
    link = portal.device(session, user, link_id)
    return render(v, "code.html", link=link, account=portal.driver_account(session, user))


@router.post("/devices/{link_id}/code")
def code(request: Request, session: WriteSessionDep, link_id: Id, action: F = "clear",
         csrf: F = "") -> Response:
    """Issue the code and show it with its validity and how to enter it."""
    v = _v(request, session)
    user = v.require("driver")
    link = portal.device(session, user, link_id)
    return submit(v, session, csrf, lambda: portal.request_code(session, v.ctx, user, link_id, action),
                  lambda issued: render(v, "code_issued.html", link=link, issued=issued,
                                        steps=helpdesk.entry_steps(issued.code)),
                  lambda exc: form_error(v, "code.html", exc, link=link, account=portal.driver_account(session, user)))


@router.get("/devices/{link_id}/reset-fee")
def reset_fee(request: Request, session: SessionDep, link_id: Id) -> Response:
    """The violation reset fee is paid by card on billing's page (nothing is recorded here)."""
    v = _v(request, session)
    portal.device(session, v.require("driver"), link_id)
    return redirect("/portal/billing/reset-fee/%d" % link_id)


@router.get("/clears/{payment_id}")
def clear(request: Request, session: SessionDep, payment_id: Id) -> Response:
    """paid -> queued -> delivered -> applied (or refused / expired), refreshing itself until final."""
    v = _v(request, session)
    user = v.require("driver")
    return render(v, "clear.html", p=portal.clear_progress(session, user, payment_id))


@router.get("/notifications")
def notifications(request: Request, session: SessionDep) -> Response:
    """Every notification, newest first."""
    v = _v(request, session)
    user = v.require()
    items = [(n, *notes.render(n.kind, n.params or {}, v.lang)) for n in notes.list_for(session, user)]
    return render(v, "notifications.html", items=items)


@router.post("/notifications/{notification_id}/read")
def notification_read(request: Request, session: WriteSessionDep, notification_id: Id,
                      csrf: F = "") -> Response:
    """Mark one read and follow its link."""
    v = _v(request, session)
    user = v.require()
    return submit(v, session, csrf, lambda: notes.mark_read(session, user, notification_id),
                  lambda n: redirect(n.link or "/portal/notifications"))


@router.post("/notifications/read-all")
def notifications_read_all(request: Request, session: WriteSessionDep, csrf: F = "") -> Response:
    """Mark every notification read."""
    v = _v(request, session)
    user = v.require()
    return submit(v, session, csrf, lambda: notes.mark_all_read(session, user),
                  lambda _: redirect("/portal/notifications"))


@router.get("/profile")
def profile_form(request: Request, session: SessionDep) -> Response:
    """Contact details, vehicles, email preferences, language, sign-in email."""
    v = _v(request, session)
    v.require()
    return render(v, "profile.html", kinds=OPTIONAL_EMAIL)


@router.post("/profile")
async def profile(request: Request, session: WriteSessionDep) -> Response:
    """Save the profile (all or nothing; every change audited)."""
    form = await request.form()
    v = _v(request, session)
    user = v.require()

    def text(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    changes = {"name": text("name"), "phone": text("phone"), "address": text("address"),
               "vehicles": [x for x in (text("vehicle%d" % i) for i in range(3)) if x.strip()],
               "email_prefs": {k: text("pref-" + k) == "on" for k in OPTIONAL_EMAIL},
               "language": text("language")}

    def saved(_: User) -> Response:
        v.lang = user.language
        return render(v, "profile.html", kinds=OPTIONAL_EMAIL, info=v_t(v, "saved"))

    def refused(exc: Problem) -> Response:
        session.refresh(user)
        return form_error(v, "profile.html", exc, kinds=OPTIONAL_EMAIL, form=changes)

    return submit(v, session, text("csrf"), lambda: portal.update_profile(session, user, changes), saved, refused)


@router.post("/profile/email")
def email_change(request: Request, session: WriteSessionDep, email: F = "", password: F = "",
                 csrf: F = "") -> Response:
    """Send a verification link to the new address."""
    v = _v(request, session)
    user = v.require()
    return submit(v, session, csrf, lambda: accounts.request_email_change(session, v.ctx, user, email, password),
                  lambda _: render(v, "profile.html", kinds=OPTIONAL_EMAIL, info=v_t(v, "email-sent")),
                  lambda exc: form_error(v, "profile.html", exc, kinds=OPTIONAL_EMAIL, new_email=email[:254]))


@router.get("/help")
def help_page(request: Request, session: SessionDep,
              q: Annotated[str, Query(max_length=100)] = "") -> Response:
    """FAQ (searchable), mouthpiece care, handset training from the simulator's screens."""
    v = _v(request, session)
    return render(v, "help.html", q=q, faq=helpdesk.search(q, v.lang), training=helpdesk.training())


# ---- staff -------------------------------------------------------------------------------------------------
@router.get("/staff")
def staff_home(request: Request, session: SessionDep) -> Response:
    """Create accounts, link handsets, invite authority users."""
    v = _v(request, session)
    v.require("staff")
    return render(v, "staff.html")


@router.post("/staff/accounts")
def staff_account(request: Request, session: WriteSessionDep, name: F = "", email: F = "",
                  schedule: F = "monthly", first_due: F = "", installment: F = "", language: F = "en",
                  csrf: F = "") -> Response:
    """Open a driver's account; the claim email goes out."""
    v = _v(request, session)
    actor = v.require("staff")

    def open_account() -> tuple[Account, staff.Invitation]:
        try:
            terms = AccountCreate(name=name, schedule=schedule, first_due=first_due,  # type: ignore[arg-type]
                                  installment_cents=round(float(installment) * 100))
        except (ValueError, TypeError) as exc:
            raise Problem(422, "invalid", "check the account terms") from exc
        return staff.open_driver_account(session, v.ctx, actor, terms, email, language)

    return submit(v, session, csrf, open_account,
                  lambda made: render(v, "staff.html", created=made[1], account=made[0]), _staff_refused(v))


@router.post("/staff/links")
def staff_link(request: Request, session: WriteSessionDep, account_id: F = "", handset_id: F = "",
               kind: F = "interlock", label: F = "", csrf: F = "") -> Response:
    """Link a handset (or another device) to an account."""
    v = _v(request, session)
    actor = v.require("staff")

    def link() -> DeviceLink:
        if not account_id.isdigit() or (handset_id and not handset_id.isdigit()):
            raise Problem(422, "invalid", "ids are numbers")
        return staff.link_device(session, actor, int(account_id[:10]), kind,
                                 int(handset_id[:10]) if handset_id else None, label)

    return submit(v, session, csrf, link, lambda linked: render(v, "staff.html", linked=linked), _staff_refused(v))


@router.post("/staff/authorities")
def staff_authority(request: Request, session: WriteSessionDep, name: F = "", email: F = "",
                    csrf: F = "") -> Response:
    """Invite a monitoring-authority user."""
    v = _v(request, session)
    actor = v.require("staff")
    return submit(v, session, csrf, lambda: staff.invite_authority(session, v.ctx, actor, email, name),
                  lambda inv: render(v, "staff.html", invited=inv), _staff_refused(v))


def _staff_refused(v: Visitor) -> Callable[[Problem], Response]:
    return lambda exc: form_error(v, "staff.html", exc)


# ---- words used by the handlers above ----------------------------------------------------------------------
_INFO = {
    "bad-token": N_("This link is not valid any more (used, expired or mistyped). Ask for a new one."),
    "reset-sent": N_("If this address has an account, a reset link is on its way. It works once, for a short "
                     "time."),
    "reset-done": N_("Your password is set. Sign in with it."),
    "email-verified": N_("Your sign-in email is now %(email)s."),
    "password-changed": N_("Your password is changed."),
    "saved": N_("Saved."),
    "email-sent": N_("We sent a link to the new address. Your sign-in email changes when you follow it."),
}


def v_t(v: Visitor, key: str) -> str:
    """One of the handlers' messages in the visitor's language."""
    return i18n.gettext_for(v.lang).gettext(_INFO[key])


def error_page(request: Request, status: int, kind: str) -> Response:
    """An error page (404, 403, ...) for a refusal raised outside a form handler."""
    from companion.app.web import messages

    db = request.app.state.db
    with db.sessions() as session:
        v = _v(request, session)
        text = i18n.gettext_for(v.lang).gettext(messages.for_problem(kind))
        return render(v, "message.html", status, error=text)
