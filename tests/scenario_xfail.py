"""Scenarios that show a known defect not fixed yet: their first line is `# XFAIL: why`.

Such a scenario's expectations fail on today's firmware. The scenario tests mark it xfail(strict=True), raising
ExpectationsFailed for failed expectations only: a trace that differs between the interpreters, or from the
recorded one, is still an ordinary failure, and a fixed defect fails the run until the mark is taken away (the
header line removed and the trace recorded again).
"""

import pytest


class ExpectationsFailed(AssertionError):
    """A scenario's expectations did not hold."""


def reason(path):
    """The XFAIL header's text, or None."""
    with open(path) as f:
        first = f.readline()
    return first[len("# XFAIL:"):].strip() if first.startswith("# XFAIL:") else None


def params(paths):
    """pytest params of scenario paths, the XFAIL ones marked."""
    out = []
    for p in paths:
        why = reason(p)
        marks = [pytest.mark.xfail(strict=True, raises=ExpectationsFailed, reason=why)] if why else []
        out.append(pytest.param(p, marks=marks, id=p.name))
    return out
