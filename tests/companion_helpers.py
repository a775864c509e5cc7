"""Helpers the companion API tests share: problem answers, and accounts and handsets made through the admin API."""

PROBLEM = "application/problem+json"


def problem(r, status):
    """The response is a problem+json answer with this status; its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["type"] and body["detail"]
    return body


def new_account(api, **kw):
    """A monthly account through the admin API (fields in kw override the defaults); its JSON."""
    body = {"name": "driver", "schedule": "monthly", "first_due": "2026-12-01", "installment_cents": 9000}
    body.update(kw)
    r = api.post("/api/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def new_handset(api, account_id=None):
    """A handset with a fresh serial through the admin API; its JSON (device id and secret)."""
    import uuid

    r = api.post("/api/v1/handsets", json={"serial": "T-" + uuid.uuid4().hex[:12], "account_id": account_id})
    assert r.status_code == 201, r.text
    return r.json()
