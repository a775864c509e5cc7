"""Portal accounts over HTTP (pages): claim, sign-in and sign-out, temporary password, password change and
reset, email change, throttling, single-use tokens, no enumeration, cookies and CSRF. Both backends."""

import datetime as dt

from sqlalchemy import select, update

from tests.portal_client import PASSWORD, csrf_of, sign_in

pytest_plugins = ["tests.portal_support"]


def _claim(c, url, password=PASSWORD):
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = c.get("/" + path)
    return c.post("/" + path, data={"password": password, "confirm": password, "csrf": csrf_of(page.text)})


def test_claim_link_from_the_email_sets_the_password_and_signs_in(world, mail):
    """The claim email's link sets the first password and signs the driver in; the link works once."""
    d = world.driver(claim=False)
    world.deliver()
    url = mail.link(d["email"], "/portal/claim/")
    assert url == d["claim_url"]
    msg = mail.to(d["email"])[-1]
    assert mail.html(msg).startswith("<!doctype html>") and url in mail.text(msg)
    with world.browser() as c:
        r = _claim(c, url)
        assert r.status_code == 303
        assert "portal_session" in r.cookies
        assert c.get("/portal/dashboard").status_code == 200
    with world.browser() as c:
        again = _claim(c, url)
        assert again.status_code == 400 and "not valid any more" in again.text


def test_claim_refuses_a_weak_password_and_changes_nothing(world):
    """A claim with a password without a number is refused on the form; the token stays usable."""
    d = world.driver(claim=False)
    with world.browser() as c:
        r = _claim(c, d["claim_url"], "nonumbers")
        assert r.status_code == 422 and "at least one number" in r.text
        assert _claim(c, d["claim_url"], "short1").status_code == 422
        assert _claim(c, d["claim_url"]).status_code == 303


def test_customer_id_and_temporary_password_force_a_new_password(world):
    """Signing in with customer id + temporary password leads to the password form, and nothing else opens
    until the password is changed."""
    d = world.driver(claim=False)
    with world.browser() as c:
        r = sign_in(c, d["customer_id"], d["temporary"])
        assert r.status_code == 303 and r.headers["location"] == "/portal/password"
        assert c.get("/portal/dashboard").headers["location"] == "/portal/password"
        page = c.get("/portal/password")
        assert "temporary password" in page.text
        r = c.post("/portal/password", data={"current": d["temporary"], "new": "my own pass 7",
                                             "confirm": "my own pass 7", "csrf": csrf_of(page.text)})
        assert r.status_code == 200
        assert c.get("/portal/dashboard").status_code == 200
    with world.browser() as c:
        assert sign_in(c, d["email"], "my own pass 7").status_code == 303
    with world.browser() as c:
        assert sign_in(c, d["customer_id"], d["temporary"]).status_code == 401


def test_session_cookie_is_httponly_samesite_and_sign_out_ends_it(world):
    """The session cookie is HttpOnly and SameSite; after sign-out the old cookie opens nothing."""
    d = world.driver()
    with world.browser() as c:
        r = sign_in(c, d["email"])
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie
        token = c.cookies["portal_session"]
        page = c.get("/portal/dashboard")
        assert c.post("/portal/sign-out", data={"csrf": csrf_of(page.text)}).status_code == 303
    with world.browser() as c:
        c.cookies.set("portal_session", token)
        assert c.get("/portal/dashboard").headers["location"] == "/portal/sign-in"


def test_wrong_password_and_unknown_email_get_the_same_answer(world):
    """A wrong password and an address with no account give the same status and the same words."""
    d = world.driver()
    with world.browser() as c:
        a = sign_in(c, d["email"], "wrong password 1")
    with world.browser() as c:
        b = sign_in(c, "nobody-%s@example.org" % d["user_id"], "wrong password 1")
    assert a.status_code == b.status_code == 401
    strip = lambda t: t.replace(d["email"], "X").replace("nobody-%s@example.org" % d["user_id"], "X")  # noqa: E731
    import re

    norm = lambda t: re.sub(r'value="[^"]{20,}"', 'value=""', strip(t))  # noqa: E731
    assert norm(a.text) == norm(b.text)


def test_sign_in_is_throttled_per_account(world):
    """After 5 failures for one email, even the right password is refused for the window (429)."""
    d = world.driver()
    for _ in range(5):
        with world.browser() as c:
            assert sign_in(c, d["email"], "wrong password 1").status_code == 401
    with world.browser() as c:
        r = sign_in(c, d["email"])
        assert r.status_code == 429 and "Retry-After" in r.headers
    # the same for an address with no account: nobody learns which exist
    ghost = "ghost-%d@example.org" % d["user_id"]
    for _ in range(5):
        with world.browser() as c:
            assert sign_in(c, ghost, "wrong password 1").status_code == 401
    with world.browser() as c:
        assert sign_in(c, ghost, "wrong password 1").status_code == 429


def test_sign_in_is_throttled_per_address(world):
    """Failures over many emails from one address end in 429 for that address."""
    from companion.app.accounts.models import LoginFailure

    limit = world.ctx.ps.THROTTLE_PER_ADDRESS
    with world.session() as s:  # other tests' failures from 127.0.0.1 must not count here
        s.execute(update(LoginFailure).values(at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        s.commit()
    for i in range(limit):
        with world.browser() as c:
            assert sign_in(c, "spray-%d@example.org" % i, "wrong password 1").status_code == 401
    d = world.driver()
    with world.browser() as c:
        assert sign_in(c, d["email"]).status_code == 429
    with world.session() as s:
        s.execute(update(LoginFailure).values(at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        s.commit()


def test_reset_by_email_works_once_and_ends_other_sessions(world, mail):
    """The reset link sets a new password once; a second use is refused; old sessions end."""
    d = world.driver()
    old = world.browser(d["email"])
    with world.browser() as c:
        page = c.get("/portal/reset")
        r = c.post("/portal/reset", data={"email": d["email"].upper(), "csrf": csrf_of(page.text)})
        assert r.status_code == 200 and "on its way" in r.text
    world.deliver()
    url = mail.link(d["email"], "/portal/reset/")
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    with world.browser() as c:
        page = c.get(path)
        assert page.status_code == 200
        r = c.post(path, data={"password": "brand new 99", "confirm": "brand new 99", "csrf": csrf_of(page.text)})
        assert r.status_code == 200
        r2 = c.post(path, data={"password": "other new 98", "confirm": "other new 98", "csrf": csrf_of(page.text)})
        assert r2.status_code == 400
    assert old.get("/portal/dashboard").status_code == 303
    old.close()
    with world.browser() as c:
        assert sign_in(c, d["email"], "brand new 99").status_code == 303


def test_reset_answers_the_same_for_unknown_addresses_and_sends_nothing(world, mail):
    """Asking a reset for an address with no account gives the same page and sends no mail."""
    before = len(mail.messages)
    with world.browser() as c:
        page = c.get("/portal/reset")
        r = c.post("/portal/reset", data={"email": "no-such-user@example.org", "csrf": csrf_of(page.text)})
    assert r.status_code == 200 and "on its way" in r.text
    world.deliver()
    assert len(mail.messages) == before
    assert mail.to("no-such-user@example.org") == []


def test_expired_reset_token_is_refused(world, mail):
    """A reset token past its lifetime is refused like a wrong one."""
    from companion.app.accounts.models import AuthToken

    d = world.driver()
    with world.browser() as c:
        page = c.get("/portal/reset")
        c.post("/portal/reset", data={"email": d["email"], "csrf": csrf_of(page.text)})
    world.deliver()
    url = mail.link(d["email"], "/portal/reset/")
    with world.session() as s:
        s.execute(update(AuthToken).where(AuthToken.user_id == d["user_id"], AuthToken.kind == "reset")
                  .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.commit()
    with world.browser() as c:
        assert c.get("/" + url.split("://", 1)[1].split("/", 1)[1]).status_code == 400


def test_tokens_are_stored_as_hashes_only(world, mail):
    """No claim, reset or session token appears in the database as it was sent."""
    from companion.app.accounts.models import AuthToken, WebSession

    d = world.driver(claim=False)
    token = d["claim_url"].rsplit("/", 1)[1]
    with world.browser(None) as c:
        _claim(c, d["claim_url"])
        session_token = c.cookies["portal_session"]
    with world.session() as s:
        hashes = set(s.scalars(select(AuthToken.token_hash))) | set(s.scalars(select(WebSession.token_hash)))
    assert token not in hashes and session_token not in hashes


def test_email_change_is_verified_before_it_becomes_the_login(world, mail):
    """A new address gets a confirmation link; until it is followed the old address is the login; after it
    the new one is, and the old address is told."""
    d = world.driver()
    new = "new-" + d["email"]
    with world.browser(d["email"]) as c:
        page = c.get("/portal/profile")
        r = c.post("/portal/profile/email", data={"email": new, "password": PASSWORD, "csrf": csrf_of(page.text)})
        assert r.status_code == 200
    with world.browser() as c:
        assert sign_in(c, new).status_code == 401
    world.deliver()
    url = mail.link(new, "/portal/verify-email/")
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    with world.browser() as c:
        page = c.get(path)
        assert new in page.text
        assert c.post(path, data={"csrf": csrf_of(page.text)}).status_code == 200
    with world.browser() as c:
        assert sign_in(c, new).status_code == 303
    with world.browser() as c:
        assert sign_in(c, d["email"]).status_code == 401
    world.deliver()
    assert any("Your sign-in email changed" in str(m["Subject"]) for m in mail.to(d["email"]))


def test_email_change_to_a_taken_address_answers_the_same_and_sends_nothing(world, mail):
    """Asking to move to an address another account uses looks the same as any request; nothing is sent."""
    a, b = world.driver(), world.driver()
    world.deliver()
    before = len(mail.to(b["email"]))
    with world.browser(a["email"]) as c:
        page = c.get("/portal/profile")
        r = c.post("/portal/profile/email", data={"email": b["email"], "password": PASSWORD,
                                                  "csrf": csrf_of(page.text)})
        assert r.status_code == 200 and "We sent a link" in r.text
    world.deliver()
    assert len(mail.to(b["email"])) == before


def test_forms_refuse_missing_or_wrong_csrf_and_change_nothing(world):
    """A sign-in, password change or profile save without the right CSRF token is refused (403)."""
    d = world.driver()
    with world.browser() as c:
        c.get("/portal/sign-in")
        assert c.post("/portal/sign-in", data={"identity": d["email"], "password": PASSWORD}).status_code == 403
        assert c.post("/portal/sign-in", data={"identity": d["email"], "password": PASSWORD,
                                               "csrf": "x" * 43}).status_code == 403
    with world.browser(d["email"]) as c:
        r = c.post("/portal/profile", data={"name": "Mallory", "csrf": "wrong" * 9})
        assert r.status_code == 403
        r = c.post("/portal/password", data={"current": PASSWORD, "new": "hijacked 11", "confirm": "hijacked 11"})
        assert r.status_code == 403
        assert "Mallory" not in c.get("/portal/profile").text
    with world.browser() as c:
        assert sign_in(c, d["email"]).status_code == 303


def test_unknown_and_known_emails_cost_the_same_password_work(world):
    """Enumeration by timing: a sign-in with an unknown email runs one Argon2 verification, as a wrong
    password for a real account does (counted, not timed)."""
    d = world.driver()
    hasher = world.ctx.passwords.hasher
    calls = []
    real = hasher.verify

    def counting(password, hashed):
        calls.append(hashed.split("$")[3] if hashed.count("$") >= 3 else hashed)
        return real(password, hashed)

    hasher.verify = counting
    try:
        for identity in (d["email"], "unknown-%d@example.org" % d["user_id"], d["customer_id"], "C000000000"):
            calls.clear()
            with world.browser() as c:
                assert sign_in(c, identity, "wrong password 1").status_code == 401
            assert len(calls) == 1, identity
            assert calls[0] == "m=1024,t=1,p=1"  # the same parameters: the dummy hash is made like real ones
    finally:
        hasher.verify = real


def test_sign_in_and_claim_take_overlong_and_unicode_input(world):
    """Overlong, unicode and HTML input on the sign-in, claim and reset forms: a clear answer, never a 500."""
    d = world.driver(claim=False)
    with world.browser() as c:
        for identity, password in (("x" * 100000, "y" * 100000), ("<script>@x", "pässwörd 1"), ("", ""),
                                   ("\u202e" * 10, "\x00\x01")):
            r = sign_in(c, identity, password)
            assert r.status_code in (401, 403, 413, 429), identity[:20]  # 413: past the body limit
        page = c.get("/portal/reset")
        assert c.post("/portal/reset", data={"email": "é" * 5000, "csrf": csrf_of(page.text)}).status_code == 200
    path = "/" + d["claim_url"].split("://", 1)[1].split("/", 1)[1]
    with world.browser() as c:
        page = c.get(path)
        r = c.post(path, data={"password": "ñandú 2026 🚗", "confirm": "ñandú 2026 🚗", "csrf": csrf_of(page.text)})
        assert r.status_code == 303
    with world.browser() as c:
        assert sign_in(c, d["email"], "ñandú 2026 🚗").status_code == 303
    with world.browser() as c:
        assert c.get("/portal/claim/" + "a" * 5000).status_code == 400
        assert c.get("/portal/reset/%00%ff").status_code == 400
