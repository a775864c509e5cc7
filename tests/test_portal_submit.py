"""The one helper every portal form's POST goes through (companion/app/web/session.py `submit`): the CSRF check
comes before the service call, a success commits then answers, a refusal rolls back (or commits what it must
keep, a failed sign-in) and answers with the form again, or reaches the app's error page without one."""

import pytest

from companion.app.accounts.services import Kept
from companion.app.core.problems import Problem
from companion.app.web.session import submit


class _Session:
    def __init__(self):
        self.done = []

    def commit(self):
        self.done.append("commit")

    def rollback(self):
        self.done.append("rollback")


class _Visitor:
    def check_csrf(self, token):
        if token != "good":
            raise Problem(403, "csrf", "the form expired")


def _run(csrf, action, refused=True, commit=True):
    session, calls = _Session(), []

    def act():
        calls.append("action")
        return action()

    answer = submit(_Visitor(), session, csrf, act, lambda result: ("done", result),
                    (lambda exc: ("refused", exc.kind)) if refused else None, commit=commit)
    return answer, calls, session.done


def test_success_commits_then_answers_with_the_result():
    assert _run("good", lambda: 42) == (("done", 42), ["action"], ["commit"])
    assert _run("good", lambda: 42, commit=False) == (("done", 42), ["action"], [])


def test_a_wrong_csrf_token_runs_nothing_and_rolls_back():
    assert _run("bad", lambda: 42) == (("refused", "csrf"), [], ["rollback"])
    assert _run("", lambda: 42) == (("refused", "csrf"), [], ["rollback"])


def test_a_refusal_rolls_back_and_a_kept_one_commits():
    def refuse():
        raise Problem(422, "invalid", "no")

    def refuse_kept():
        raise Kept(401, "bad-credentials", "no")

    assert _run("good", refuse) == (("refused", "invalid"), ["action"], ["rollback"])
    assert _run("good", refuse_kept) == (("refused", "bad-credentials"), ["action"], ["commit"])


def test_without_a_form_to_show_the_refusal_goes_to_the_error_page():
    with pytest.raises(Problem) as info:
        _run("bad", lambda: 42, refused=False)
    assert info.value.kind == "csrf"


def test_an_unexpected_error_is_not_swallowed():
    def broken():
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        _run("good", broken)
