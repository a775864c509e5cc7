"""The contract the handset, the companion and the technician tool share exists once, in firmware/interlock.

The companion and the technician tool import it; neither restates it. "Restated" is checked two ways over every
Python file of companion/ and technician/:
- a name the contract defines (an upper-case module-level name of interlock) bound to a literal value;
- a literal equal to one of the contract's own texts: HKDF labels, header names, the sync path, the MAC message
  tags, struct layouts, the record magic, command kinds, refusal reasons (every string or bytes literal in
  interlock's code, less the generic words of JSON and HTTP listed in GENERIC).
"""

import ast
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "firmware" / "interlock"
USERS = (ROOT / "companion", ROOT / "technician")

# texts of the contract that are also everyday words of the companion's API, JSON and HTTP
GENERIC = {"", ",", ":", "=", "[", "]", "{", "}", "|", "\n", "POST", "application/json", "content-type", "arg", "id",
           "kind", "mac", "seq", "expires", "device_id", "null", "true", "false", "ok", "clear", "policy",
           "0123456789abcdef", b"", b"\x00"}


def _docstrings(tree):
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _literal(node):
    """The literal value of node (a constant, const(constant), or a tuple of constants), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const" and node.args:
        node = node.args[0]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _norm(text):
    return text.strip("\n|") if isinstance(text, str) else text


def contract():
    """(names the contract defines, its own texts) read from firmware/interlock's source."""
    names = set()
    texts = set()
    for path in CONTRACT.glob("*.py"):
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name) and t.id.lstrip("_").isupper())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and id(node) not in docs:
                if node.value not in GENERIC:
                    texts.add(_norm(node.value))
    return names, texts


def restatements(paths):
    """'file:line: what' for each restated name or text in the Python files under paths."""
    names, texts = contract()
    found = []
    for top in paths:
        for path in sorted(top.rglob("*.py")):
            tree = ast.parse(path.read_text())
            docs = _docstrings(tree)
            where = "%s:%%d" % path.relative_to(top.parent)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        if isinstance(t, ast.Name) and t.id in names and _literal(node.value) is not None:
                            found.append((where % node.lineno) + ": %s restated as a literal" % t.id)
                elif (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
                      and id(node) not in docs and _norm(node.value) in texts):
                    found.append((where % node.lineno) + ": %r restates the contract" % node.value)
    return found


def test_the_companion_and_the_technician_tool_restate_nothing_of_the_contract():
    """No companion or technician source binds a contract name to a literal or spells one of its texts."""
    assert restatements(USERS) == []


def test_the_check_finds_a_restated_constant_and_a_restated_label(tmp_path):
    """A module that restates RC_APPLIED, an HKDF label, a header name or a MAC tag is caught on each line."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "wire.py").write_text('RC_APPLIED = 1\nLABEL = b"interlock sync v1"\nH = "x-nonce"\n'
                                 'def m(a):\n    return "\\n".join(("Q1", a))\n')
    found = restatements([bad])
    assert [f.split(": ", 1)[1] for f in found] == [
        "RC_APPLIED restated as a literal", "b'interlock sync v1' restates the contract",
        "'x-nonce' restates the contract", "'Q1' restates the contract"]


def test_the_contract_is_one_self_contained_package():
    """interlock imports only the standard modules MicroPython has and its own modules (relatively), so it
    installs on CPython with no stand-in on sys.path and runs on the board as a top-level package."""
    allowed = {"hashlib", "struct", "binascii", "json", "micropython"}
    for path in CONTRACT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert {a.name for a in node.names} <= allowed, path.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module in allowed, "%s imports %s" % (path.name, node.module)
    # on CPython the package needs no micropython module: import it in a clean interpreter state
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "interlock" or k.startswith("interlock.")}
    blocked = sys.modules.get("micropython")
    sys.modules["micropython"] = None  # type: ignore[assignment]  (import micropython raises ImportError)
    try:
        for path in CONTRACT.glob("*.py"):
            mod = importlib.import_module("interlock." + path.stem if path.stem != "__init__" else "interlock")
            assert Path(mod.__file__).resolve().parent == CONTRACT
    finally:
        for k in [k for k in sys.modules if k == "interlock" or k.startswith("interlock.")]:
            del sys.modules[k]
        sys.modules.update(saved)
        if blocked is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = blocked


def test_companion_and_technician_never_name_the_simulator():
    """Issue 10's check, `grep -rn host_sim companion technician`, finds nothing: neither imports it nor
    leans on it in its docs (the portal reads the simulator's recorded training screens from a file)."""
    hits = []
    for top in ("companion", "technician"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".png", ".pyc", ".mo"):
                text = path.read_text(encoding="utf-8", errors="replace")
                hits += ["%s:%d" % (path.relative_to(ROOT), n) for n, line in enumerate(text.splitlines(), 1)
                         if "host_sim" in line]
    assert not hits, hits
