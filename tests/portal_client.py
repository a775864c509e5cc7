"""Helpers of the portal tests that drive the pages over HTTP (imported by tests; the fixtures are in
portal_support)."""

import re

import httpx

PASSWORD = "correct horse 42"


def csrf_of(html: str) -> str:
    """The CSRF token of the page's forms."""
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no csrf field"
    return m.group(1)


def sign_in(c: httpx.Client, identity: str, password: str = PASSWORD) -> httpx.Response:
    """Sign a client in through the form; returns the POST's response."""
    page = c.get("/portal/sign-in")
    r = c.post("/portal/sign-in", data={"identity": identity, "password": password, "csrf": csrf_of(page.text)})
    return r
