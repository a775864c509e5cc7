"""Security matrix over every portal page route (taken from the app, so a new route is covered): without a
session, with another driver's session and ids, without or with a wrong CSRF token; security headers on every
response; the JSON API's bearer tokens, refresh rotation and reuse, ownership and problem+json answers."""

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.companion_doubles import SyncedSim
from tests.portal_client import PASSWORD, csrf_of

pytest_plugins = ["tests.portal_support"]

PUBLIC = {"/portal", "/portal/", "/portal/sign-in", "/portal/reset", "/portal/claim/{token}",
          "/portal/reset/{token}", "/portal/verify-email/{token}", "/portal/help", "/portal/language",
          "/portal/sign-out", "/portal/password"}


def _page_routes(_app):
    from companion.app.web import billing_pages, pages

    out = []
    for r in [*pages.router.routes, *billing_pages.router.routes]:
        if isinstance(r, APIRoute) and r.path.startswith("/portal"):
            for m in r.methods:
                out.append((m, r.path))
    return sorted(out)


@pytest.fixture(scope="module")
def pair(world, portal_server):
    """Two drivers; B has a device, a paid reset fee (a clear) and a notification."""
    a = world.driver()
    b = world.driver()
    sim = SyncedSim(portal_server.url, b["handsets"][0])
    sim.violation_lockout()
    sim.settle()
    pay = world.office.pay(b["account_id"], "reset_fee", 7500, device_id=b["handsets"][0]["device_id"])
    from companion.app.notifications.models import Notification

    world.deliver()
    with world.session() as s:
        from sqlalchemy import select

        nid = s.scalar(select(Notification.id).where(Notification.user_id == b["user_id"]))
    b["payment_id"] = pay["id"]
    b["notification_id"] = nid
    return a, b


def _fill(path, ids):
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)  # billing's ids: 1


def test_every_route_needs_a_session(world, pair):
    """Without a session every non-public page redirects to sign-in (GET) or is refused (POST)."""
    _a, b = pair
    ids = {"link_id": b["devices"][0], "payment_id": b["payment_id"], "notification_id": b["notification_id"],
           "token": "x" * 43}
    routes = [(m, p) for m, p in _page_routes(world.app) if p not in PUBLIC]
    assert len(routes) >= 15
    with world.browser() as c:
        csrf = csrf_of(c.get("/portal/sign-in").text)
        for method, path in routes:
            r = c.request(method, _fill(path, ids), data={"csrf": csrf} if method == "POST" else None)
            assert r.status_code == 303 and r.headers["location"] == "/portal/sign-in", (method, path)


def test_another_drivers_ids_give_404_and_change_nothing(world, pair):
    """Driver A on every route with an id of driver B's: 404, and B's clear, code count and notification stay
    as they were."""
    from companion.app.models import UnlockCode
    from companion.app.notifications.models import Notification

    a, b = pair
    ids = {"link_id": b["devices"][0], "payment_id": b["payment_id"], "notification_id": b["notification_id"]}
    routes = [(m, p) for m, p in _page_routes(world.app) if re.search(r"\{(link_id|payment_id|notification_id)\}", p)]
    assert len(routes) >= 6
    with world.browser(a["email"]) as c:
        csrf = csrf_of(c.get("/portal/dashboard").text)
        for method, path in routes:
            data = {"csrf": csrf, "action": "clear", "reference": "ref-%s" % ("b" * 12)}
            r = c.request(method, _fill(path, ids), data=data if method == "POST" else None)
            assert r.status_code == 404, (method, path, r.status_code)
            assert "Not found" in r.text
        # unknown ids answer the same
        for method, path in routes:
            r = c.request(method, _fill(path, {k: 999999 for k in ids}), data={"csrf": csrf} if method == "POST" else None)
            assert r.status_code == 404, (method, path)
    with world.session() as s:
        from sqlalchemy import func, select

        assert s.scalar(select(func.count()).select_from(UnlockCode).where(
            UnlockCode.handset_id == b["handsets"][0]["device_id"])) == 0
        assert s.get(Notification, b["notification_id"]).read is False


def test_staff_pages_are_404_for_drivers(world, pair):
    """A driver on a staff route gets 404, and nothing is created."""
    a, _b = pair
    with world.browser(a["email"]) as c:
        csrf = csrf_of(c.get("/portal/dashboard").text)
        assert c.get("/portal/staff").status_code == 404
        r = c.post("/portal/staff/authorities", data={"email": "evil@example.org", "name": "x", "csrf": csrf})
        assert r.status_code == 404
    with world.browser() as c:
        from tests.portal_client import sign_in

        assert sign_in(c, "evil@example.org", PASSWORD).status_code == 401


def test_every_post_refuses_a_missing_or_wrong_csrf_token(world, pair):
    """Signed in, every POST route without the form token, or with another session's, is refused (403)."""
    a, b = pair
    ids = {"link_id": a["devices"][0], "payment_id": 1, "notification_id": 1, "token": "x" * 43}
    other = world.browser(b["email"])
    other_csrf = csrf_of(other.get("/portal/dashboard").text)
    other.close()
    posts = [p for m, p in _page_routes(world.app) if m == "POST" and "staff" not in p]
    with world.browser(a["email"]) as c:
        for path in posts:
            for data in ({}, {"csrf": other_csrf}, {"csrf": ""}):
                r = c.post(_fill(path, ids), data=data)
                assert r.status_code in (403, 404), (path, data, r.status_code)
                if "{payment_id}" not in path and "{notification_id}" not in path:
                    assert r.status_code == 403, (path, data)
        assert c.get("/portal/dashboard").status_code == 200  # still signed in: sign-out needed the token


def test_security_headers_on_every_kind_of_response(world, portal_server):
    """Pages, redirects, errors, static files and the API carry CSP (no inline script, frame-ancestors
    'none'), Referrer-Policy and nosniff; no HSTS over plain HTTP."""
    with httpx.Client(base_url=portal_server.url) as c:
        for path in ("/portal/sign-in", "/portal/dashboard", "/portal/nope", "/portal/static/portal.css",
                     "/api/v1/utils/health", "/api/v1/portal/me", "/portal/devices/abc/code"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, path
            assert "frame-ancestors 'none'" in csp
            assert r.headers["referrer-policy"] == "same-origin"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "strict-transport-security" not in r.headers
        assert c.get("/portal/devices/abc/code").status_code == 404


def test_hsts_over_tls():
    """Behind TLS (an https scheme), responses carry Strict-Transport-Security."""
    import asyncio

    from companion.app.web.headers import SecurityHeaders

    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        sent.append(message)

    for scheme in ("https", "http"):
        sent.clear()
        asyncio.run(SecurityHeaders(app)({"type": "http", "path": "/portal/", "scheme": scheme}, None, send))
        names = {k for k, _ in sent[0]["headers"]}
        assert (b"strict-transport-security" in names) == (scheme == "https")


def test_pages_have_no_inline_script_or_style(world, pair):
    """The pages hold no <script> body, no on*= handler and no style attribute (the CSP would block them)."""
    a, b = pair
    with world.browser(a["email"]) as c:
        for path in ("/portal/dashboard", "/portal/profile", "/portal/notifications", "/portal/help",
                     "/portal/devices/%d/code" % a["devices"][0]):
            html = c.get(path).text
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
            assert not re.search(r"\son[a-z]+=", html), path
            assert " style=" not in html, path


# ---- JSON API ---------------------------------------------------------------------------------------------
def _api(server, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return httpx.Client(base_url=server.url + "/api/v1/portal", headers=headers, timeout=30)


def test_api_password_flow_refresh_rotation_and_reuse(world, portal_server):
    """The token endpoint gives an access and a refresh token; a refresh gives a new pair once; reusing a
    refresh token ends the whole family (the new pair stops working too)."""
    d = world.driver()
    pair = world.api_token(d["email"])
    with _api(portal_server, pair["access_token"]) as c:
        assert c.get("/me").json()["email"] == d["email"]
    r = httpx.post(portal_server.url + "/api/v1/portal/token",
                   data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    with _api(portal_server, second["access_token"]) as c:
        assert c.get("/dashboard").status_code == 200
    reuse = httpx.post(portal_server.url + "/api/v1/portal/token",
                       data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert reuse.status_code == 401 and reuse.headers["content-type"] == "application/problem+json"
    with _api(portal_server, second["access_token"]) as c:
        assert c.get("/me").status_code == 401
    again = httpx.post(portal_server.url + "/api/v1/portal/token",
                       data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert again.status_code == 401


def test_api_wrong_password_and_unknown_user_answer_the_same(world, portal_server):
    """The token endpoint's refusal is the same body for a wrong password and an unknown user."""
    d = world.driver()
    a = httpx.post(portal_server.url + "/api/v1/portal/token",
                   data={"grant_type": "password", "username": d["email"], "password": "nope nope 1"})
    b = httpx.post(portal_server.url + "/api/v1/portal/token",
                   data={"grant_type": "password", "username": "x" + d["email"], "password": "nope nope 1"})
    assert a.status_code == b.status_code == 401 and a.json() == b.json()


def test_api_ownership_and_problem_answers(world, portal_server, pair):
    """Another driver's device, clear or notification is 404 problem+json; bad bodies are 422 problem+json
    and change nothing."""
    a, b = pair
    token = world.api_token(a["email"])["access_token"]
    with _api(portal_server, token) as c:
        for method, path, body in (("POST", "/devices/%d/unlock-codes" % b["devices"][0], {"action": "clear"}),
                                   ("POST", "/billing/devices/%d/reset-fee" % b["devices"][0],
                                    {"method_id": 1, "idempotency_key": "r" * 10}),
                                   ("GET", "/clears/%d" % b["payment_id"], None),
                                   ("POST", "/notifications/%d/read" % b["notification_id"], None)):
            r = c.request(method, path, json=body)
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
        for body in ({"name": "x" * 201}, {"phone": 5}, {"language": "fr"}, {"vehicles": ["a"] * 6},
                     {"email_prefs": {"nonsense": True}}, {"unknown": 1}, {"phone": "not a phone"}):
            r = c.patch("/me", json=body)
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", body
        assert c.get("/me").json()["phone"] == ""
        assert c.post("/me/email", json={"email": "not-an-email", "password": PASSWORD}).status_code == 422
        r = c.patch("/me", json={"name": "<b>José</b> 🚗"})
        assert r.status_code == 200 and r.json()["name"] == "<b>José</b> 🚗"


def test_api_temporary_password_must_be_changed_first(world, portal_server):
    """With the temporary password, the API answers 403 until the password is changed."""
    d = world.driver(claim=False)
    token = world.api_token(d["customer_id"], d["temporary"])["access_token"]
    with _api(portal_server, token) as c:
        r = c.get("/dashboard")
        assert r.status_code == 403 and r.json()["type"].endswith("password-change-required")
        assert c.post("/me/password", json={"current": d["temporary"], "new": "mine mine 12"}).status_code == 204
    token = world.api_token(d["email"], "mine mine 12")["access_token"]
    with _api(portal_server, token) as c:
        assert c.get("/dashboard").status_code == 200


def test_openapi_documents_the_portal_api(portal_server):
    """The OpenAPI schema names the OAuth2 password flow and the portal's routes; pages are not in it."""
    doc = httpx.get(portal_server.url + "/api/v1/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert any(s.get("flows", {}).get("password", {}).get("tokenUrl") == "portal/token" for s in schemes.values())
    assert "/api/v1/portal/dashboard" in doc["paths"] and "/api/v1/portal/token" in doc["paths"]
    assert not any(p.startswith("/portal") for p in doc["paths"])
