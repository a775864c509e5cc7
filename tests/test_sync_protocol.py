"""The sync protocol's steps are pure: device time comes in as `now`, and no step touches a database."""

import pytest

from companion import testing
from companion.app.core import keys
from companion.app.core.keyring import Keyring, PurposeKeys
from companion.app.core.problems import Problem
from companion.app.sync.protocol import SyncService
from interlock import record, wire
from tests.companion_doubles import WireHandset

SECRET = "11" * 32
NOW = 91_000_000


def _service(tmp_path):
    settings = testing.settings_for("sqlite:///" + str(tmp_path / "c.db"), testing.test_master_keys())
    return SyncService(settings, Keyring(settings))


def _keys():
    secret = bytes.fromhex(SECRET)
    return PurposeKeys(keys.derive(secret, keys.LABEL_SYNC), keys.derive(secret, keys.LABEL_UNLOCK),
                       keys.derive(secret, keys.LABEL_TECH))


def _verify(svc, handset, ts, now, **kw):
    headers, body = handset.request(ts=ts, **kw)
    device_id, ts, nonce, sig = svc.authenticate_headers(headers, body)
    return svc.verify(_keys(), (0, "", ""), device_id, ts, nonce, sig, body, now)


def test_the_clock_window_is_checked_against_the_now_passed_in(tmp_path):
    """A request stamped at ts is accepted at now = ts + window and refused one second later, with that now
    as the server time; the plan carries the now it was made at."""
    svc = _service(tmp_path)
    window = svc.settings.SYNC_WINDOW_S
    handset = WireHandset(7, SECRET)
    assert _verify(svc, handset, NOW, NOW + window).now == NOW + window
    with pytest.raises(Problem) as refused:
        _verify(svc, handset, NOW, NOW + window + 1)
    assert refused.value.kind == "clock-skew" and refused.value.extra["server_time"] == NOW + window + 1


def test_a_plan_and_its_signed_answer_come_from_the_request_alone(tmp_path):
    """The plan of a request with two new records and the answer signed for it depend only on the request,
    the keys, the log head and now: the same inputs give the same bytes."""
    svc = _service(tmp_path)
    handset = WireHandset(7, SECRET)
    handset.append(2)
    headers, body = handset.request(ts=NOW, log=handset.chunk(1, 2), nonce="ab" * 8)
    answers = []
    for _ in range(2):
        device_id, ts, nonce, sig = svc.authenticate_headers(headers, body)
        plan = svc.verify(_keys(), (0, "", ""), device_id, ts, nonce, sig, body, NOW)
        assert [r[1] for r in plan.log_rows] == [1, 2] and plan.log_ack == 2
        assert plan.log_hash == handset.hashes[2].hex() and handset.hashes[0] == record.GENESIS
        commands, send, expired, more = svc.commands(plan, [(5, 1, wire.KIND_CLEAR, 40, NOW + 60)])
        assert send == [5] and expired == [] and not more
        answer = svc.answer(plan, (0, 0, 0, 0, 0, None), commands, more)
        answers.append((answer.body, answer.signature))
    assert answers[0] == answers[1]
    assert wire.verify_response(_keys().sync, 7, "ab" * 8, 200, {wire.H_SIG: answers[0][1]}, answers[0][0])
