"""Handset secrets and keys on the companion: derivation identical to the firmware's (CPython and
MicroPython), AES-256-GCM at rest under a master key with a key id, rotation."""

import base64
import json
import os
import struct

import pytest
from cryptography.exceptions import InvalidTag

from companion.app.core import keys
from interlock import codes, crypto
from tests.companion_doubles import WireHandset
from tests.interpreters import ROOT, micropython_available, run_cpython, run_micropython

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)

SCRIPT = ROOT / "tests" / "conformance" / "sync_keys.py"


def _companion_lines(text):
    """Recompute each line of the conformance script's output with the companion's own code."""
    from companion.app import crud

    out = []
    for line in text.splitlines():
        secret_hex, _s, _u, _t, device, _code, _tok = line.split()
        i = len(out)
        s = bytes.fromhex(secret_hex)
        sync, unlock, tech = (keys.derive(s, lab) for lab in (keys.LABEL_SYNC, keys.LABEL_UNLOCK, keys.LABEL_TECH))
        code = crud.code_for(unlock, int(device), 1 if i % 2 else 2, i + 1, 25000 + i)
        token = keys.tech_token_key(tech, int(device), 40 + i, 91000000 + i * 3600)
        out.append(" ".join((secret_hex, sync.hex(), unlock.hex(), tech.hex(), device, f"{code:08d}",
                             token.hex())))
    return "\n".join(out) + "\n"


def test_companion_derivation_matches_firmware_on_cpython():
    """The companion derives the same sync, unlock and technician keys, codes and token keys as the firmware."""
    out = run_cpython(SCRIPT)
    assert len(out.splitlines()) == 6
    assert _companion_lines(out) == out


@pytest.mark.skipif(not micropython_available(), reason="Node or the MicroPython npm package is missing")
def test_companion_derivation_matches_firmware_on_micropython():
    """The firmware on real MicroPython derives byte-identical keys to the companion's."""
    out = run_micropython(SCRIPT.relative_to(ROOT))
    assert _companion_lines(out) == out


def test_random_secrets_derive_identically():
    """For random secrets and every label, companion and firmware derivations agree."""
    for _ in range(50):
        s = os.urandom(32)
        for label in (keys.LABEL_SYNC, keys.LABEL_UNLOCK, keys.LABEL_TECH):
            assert keys.derive(s, label) == crypto.derive(s, label)
    assert (keys.LABEL_SYNC, keys.LABEL_UNLOCK, keys.LABEL_TECH) == (
        crypto.LABEL_SYNC, crypto.LABEL_UNLOCK, crypto.LABEL_TECH)


def test_companion_unlock_code_matches_fsm_codes():
    """The companion's code equals interlock.codes.code_for for the same parameters."""
    from companion.app import crud

    for i in range(30):
        k = os.urandom(32)
        args = (i * 977 + 1, codes.ACTION_CLEAR if i % 2 else codes.ACTION_SERVICE, i + 1, 25000 + i * 13)
        assert crud.code_for(k, *args) == codes.code_for(k, *args)


def test_secret_is_encrypted_and_bound_to_device_and_key_id():
    """The ciphertext hides the secret; a wrong master key, another device id or an edit fails to decrypt."""
    s = keys.new_secret()
    master = os.urandom(32)
    nonce, ct = keys.encrypt_secret(s, 7, "k1", master)
    assert s not in ct and len(ct) == 32 + 16
    assert keys.decrypt_secret(nonce, ct, 7, "k1", master) == s
    with pytest.raises(InvalidTag):
        keys.decrypt_secret(nonce, ct, 7, "k1", os.urandom(32))
    with pytest.raises(InvalidTag):
        keys.decrypt_secret(nonce, ct, 8, "k1", master)
    with pytest.raises(InvalidTag):
        keys.decrypt_secret(nonce, ct, 7, "k2", master)
    with pytest.raises(InvalidTag):
        keys.decrypt_secret(nonce, bytes([ct[0] ^ 1]) + ct[1:], 7, "k1", master)


def test_new_secrets_are_distinct():
    """Provisioning draws a fresh 256-bit secret each time."""
    seen = {keys.new_secret() for _ in range(200)}
    assert len(seen) == 200 and all(len(s) == 32 for s in seen)


def test_tech_token_key_formula():
    """token_key = HMAC-SHA256(tech key, "TT" | device | tech | expires), the handset's own derivation."""
    tech = os.urandom(32)
    want = crypto.hmac_sha256(tech, b"TT" + struct.pack(">III", 12, 34, 56))
    assert keys.tech_token_key(tech, 12, 34, 56) == want


def test_database_dump_holds_no_secret(api):
    """Every column of every table, after provisioning, syncing, a token and a code: neither the handset
    secret nor a key derived from it appears anywhere."""
    from sqlalchemy import text

    from companion.app.core import keys
    from companion.app.models import Base

    acc = api.post("/api/v1/accounts", json={"name": "dump", "schedule": "monthly", "first_due": "2026-12-01",
                                             "installment_cents": 9000}).json()
    hs = api.post("/api/v1/handsets", json={"serial": "DUMP-1", "account_id": acc["id"]}).json()
    secret = bytes.fromhex(hs["secret"])
    w = WireHandset(hs["device_id"], hs["secret"])
    w.append(3)
    w.sync(api, log=w.chunk(1, 3))
    assert api.post(f"/api/v1/handsets/{w.device_id}/technician-tokens", json={"tech_id": 5}).status_code == 201
    assert api.post(f"/api/v1/handsets/{w.device_id}/unlock-codes", json={"action": "clear"}).status_code == 201
    needles = [secret] + [keys.derive(secret, label) for label in (keys.LABEL_SYNC, keys.LABEL_UNLOCK,
                                                                    keys.LABEL_TECH)]
    seen_tables = 0
    dump = b""
    with api.app_state.db.sessions() as s:
        for table in Base.metadata.sorted_tables:
            rows = s.execute(text("SELECT * FROM " + table.name)).all()
            seen_tables += bool(rows)
            for row in rows:
                for v in row:
                    dump += (bytes(v) if isinstance(v, (bytes, memoryview)) else json.dumps(v, default=str)
                             .encode()) + b"\n"
    assert seen_tables >= 7  # the dump really holds the data (accounts, handsets, logs, nonces, tokens, ...)
    assert hs["serial"].encode() in dump  # and a value known to be there is found
    for n in needles:
        for form in (n, n.hex().encode(), base64.b64encode(n)):
            assert form not in dump
    assert "secret" not in api.get("/api/v1/handsets/" + str(hs["device_id"])).json()


def test_master_key_rotation_reencrypts_and_keeps_keys(backend):
    """After MASTER_KEY_ID moves to a new key, rotation re-encrypts every secret and sync keys stay the same."""
    from companion.app.core.keyring import Keyring
    from companion.testing import ServerThread

    with ServerThread(backend) as srv, srv.client() as c:
        hs = c.post("/api/v1/handsets", json={"serial": "ROT-" + os.urandom(4).hex()}).json()
        assert hs["key_id"] == "k1"
    rotated = backend.model_copy(update={"MASTER_KEY_ID": "k2"})
    with ServerThread(rotated) as srv, srv.client() as c:
        app2 = srv.app
        n = c.post("/api/v1/handsets/keys/rotate").json()["reencrypted"]
        assert n >= 1
        view = c.get("/api/v1/handsets/" + str(hs["device_id"])).json()
        assert view["key_id"] == "k2"
        assert c.post("/api/v1/handsets/keys/rotate").json()["reencrypted"] == 0
        from companion.app.models import Handset

        with app2.state.db.sessions() as s:
            row = s.get(Handset, hs["device_id"])
            secret = Keyring(rotated).open(row.id, row.key_id, row.secret_nonce, row.secret_ct)
    assert secret.hex() == hs["secret"]
    # the old key alone no longer opens the row
    only_old = backend.model_copy(update={"MASTER_KEYS": backend.MASTER_KEYS.split(",")[0]})
    with pytest.raises(KeyError):
        Keyring(only_old).open(row.id, row.key_id, row.secret_nonce, row.secret_ct)
