"""The handset policy's names, defaults and check, from the firmware's own `fsm/policy.py` (one definition).

On the board and in the simulator `fsm` is on sys.path; elsewhere (the companion, this package's tools) the file
is loaded from the checkout this package lives in (`make deps` installs it editable).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

_FILE = Path(__file__).resolve().parent.parent / "firmware" / "fsm" / "policy.py"


def _load() -> ModuleType:
    try:
        from fsm import policy  # type: ignore[import-not-found]

        return policy
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location("_interlock_fsm_policy", _FILE)
    if spec is None or spec.loader is None:
        raise ImportError("the firmware's policy (%s) is not there" % _FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


policy = _load()
SPEC: tuple[tuple[str, int, int, int], ...] = policy.SPEC
NAMES: tuple[str, ...] = policy.NAMES
DEFAULTS: dict[str, int] = {row[0]: row[1] for row in SPEC}
BOUNDS: dict[str, tuple[int, int]] = {row[0]: (row[2], row[3]) for row in SPEC}


def check_policy(values: dict[str, Any]) -> str | None:
    """The firmware's check of a companion policy over the factory defaults: None, or its short reason."""
    return policy.Policy().check(values)
