"""`make mutate`: mutation testing of the state machine (firmware/fsm) and of the contract modules it computes
with (firmware/interlock: crypto, codes, timebase) with mutmut.

mutmut names a mutant after its file's path (fsm/machine.py -> fsm.machine) and only activates it when the
running code's module has that name; the tests import the firmware as `fsm` and `interlock` (host_sim puts
firmware/ on sys.path). So the run happens in a workspace, build/mutation/, that holds the state machine as fsm/
and the contract as interlock/ beside the rest of the firmware (firmware/ without them), host_sim/, tests/ and
pyproject.toml, with the configuration in tests/mutation/setup.cfg (source paths, the files mutated and the
fast test selection).

At the end it prints the mutants tried, killed, survived (and any timeouts or other outcomes), then every
survivor with its diff. Survivors in the files whose survivors must each be killed or explained
(EXPLAINED_FILES) are matched against tests/mutation/EQUIVALENT.md, where each entry gives the function, the
changed line before and after, and why the change cannot be seen; the exit status is 1 while any survivor
there has no entry.

    .venv/bin/python tests/mutation/run.py [--jobs N] [--keep | --report] [MUTANT_GLOB ...]

--keep reuses the workspace and mutmut's cached results (only mutants of changed functions run again; a mutant
named on the command line, by its full name or a glob, always runs again). --report runs nothing: it reports
the cached results of the mutants the globs select.
"""

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ROOT / "build" / "mutation"
EQUIVALENT = ROOT / "tests" / "mutation" / "EQUIVALENT.md"
EXPLAINED_FILES = ("machine", "breath", "entry", "codes", "brac")
MUTATED = ("fsm", "interlock")  # firmware packages at the workspace's top (setup.cfg: source_paths, only_mutate)


def build_workspace():
    """A fresh build/mutation with fsm/ and interlock/ at its top and the rest of the tree beside them."""
    shutil.rmtree(WORKSPACE, ignore_errors=True)
    WORKSPACE.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in MUTATED:
        shutil.copytree(ROOT / "firmware" / package, WORKSPACE / package, ignore=ignore)
    shutil.copytree(ROOT / "firmware", WORKSPACE / "firmware",
                    ignore=shutil.ignore_patterns("__pycache__", *MUTATED))
    shutil.copytree(ROOT / "host_sim", WORKSPACE / "host_sim", ignore=ignore)
    shutil.copytree(ROOT / "tests", WORKSPACE / "tests", ignore=shutil.ignore_patterns("__pycache__", "mutation"))
    shutil.copy2(ROOT / "pyproject.toml", WORKSPACE / "pyproject.toml")
    shutil.copy2(ROOT / "tests" / "mutation" / "setup.cfg", WORKSPACE / "setup.cfg")


def run_mutmut(jobs, names):
    """mutmut run in the workspace; its exit status."""
    mutmut = Path(sys.executable).parent / "mutmut"
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run([str(mutmut), "run", "--max-children", str(jobs), *names], cwd=WORKSPACE,
                          env=env).returncode


def collect():
    """[(mutant name, status, diff)] from mutmut's results in the workspace."""
    os.chdir(WORKSPACE)
    sys.path.insert(0, str(WORKSPACE))
    from mutmut.__main__ import (
        SourceFileMutationData,
        get_diff_for_mutant,
        status_by_exit_code,
        walk_mutatable_files,
    )

    out = []
    for path in walk_mutatable_files():
        m = SourceFileMutationData(path=path)
        m.load()
        for name, code in sorted(m.exit_code_by_key.items(), key=lambda kv: _natural(kv[0])):
            status = status_by_exit_code[code]
            diff = get_diff_for_mutant(name, path=m.path) if status not in ("killed", "not checked") else ""
            out.append((name, status, diff))
    return out


def _natural(name):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def change_of(diff):
    """The removed and added lines of a mutant's diff, each stripped and joined by ' / '."""
    minus, plus = [], []
    for line in diff.splitlines():
        if line.startswith("---") or line.startswith("+++"):
            continue
        if line.startswith("-"):
            minus.append(line[1:].strip())
        elif line.startswith("+"):
            plus.append(line[1:].strip())
    return " / ".join(minus), " / ".join(plus)


def function_of(name):
    """Module and function of a mutant name: fsm.machine.xǁInterlockǁ_abort__mutmut_3 -> (machine, Interlock._abort)."""
    base = name.partition("__mutmut_")[0]
    module, _, func = base.rpartition(".")
    if func.startswith("xǁ"):
        cls, _, meth = func[2:].partition("ǁ")
        func = cls + "." + meth
    elif func.startswith("x_"):
        func = func[2:]
    return module.rpartition(".")[2], func


def explanations():
    """{(module, function, before, after): reason} from EQUIVALENT.md.

    An entry is a `### module function` heading, then a line `- before` and a line `+ after` (indented four
    spaces), then the reason as text.
    """
    entries = {}
    text = EQUIVALENT.read_text() if EQUIVALENT.exists() else ""
    blocks = re.split(r"^### ", text, flags=re.M)[1:]
    for block in blocks:
        lines = block.splitlines()
        head = lines[0].replace("`", "").split()
        if len(head) < 2:
            continue
        minus = [ln.strip()[1:].strip() for ln in lines[1:] if ln.startswith("    -")]
        plus = [ln.strip()[1:].strip() for ln in lines[1:] if ln.startswith("    +")]
        reason = " ".join(ln.strip() for ln in lines[1:] if ln.strip() and not ln.startswith("    "))
        entries[(head[0], head[1], " / ".join(minus), " / ".join(plus))] = reason
    return entries


def main(argv):
    """Build the workspace, run mutmut, report; exit 1 while a survivor that must be explained is not."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATE_JOBS", "2")))
    ap.add_argument("--keep", action="store_true", help="reuse the workspace and cached results")
    ap.add_argument("--report", action="store_true", help="run nothing; report the cached results")
    ap.add_argument("names", nargs="*", help="only these mutants (mutmut name globs)")
    args = ap.parse_args(argv)
    if args.report:
        if not WORKSPACE.exists():
            print("no results to report: run without --report first")
            return 2
    else:
        if not args.keep or not WORKSPACE.exists():
            build_workspace()
        else:
            for sub in (*MUTATED, "tests", "host_sim"):
                src = ROOT / "firmware" / sub if sub in MUTATED else ROOT / sub
                shutil.copytree(src, WORKSPACE / sub, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "mutation"))
            shutil.copy2(ROOT / "tests" / "mutation" / "setup.cfg", WORKSPACE / "setup.cfg")
        rc = run_mutmut(args.jobs, args.names)
        if rc != 0:
            print("mutmut run failed with exit status %d" % rc)
            return rc
    results = collect()
    if args.names:
        results = [r for r in results if any(fnmatch.fnmatch(r[0], g) for g in args.names)]
    counts = {}
    for _name, status, _diff in results:
        counts[status] = counts.get(status, 0) + 1
    known = explanations()
    unexplained = 0
    explained = 0
    unchecked = sum(1 for name, status, _diff in results
                    if status == "not checked" and function_of(name)[0] in EXPLAINED_FILES)
    print("\n== survivors ==")
    for name, status, diff in results:
        if status == "killed" or status == "not checked":
            continue
        module, func = function_of(name)
        before, after = change_of(diff)
        reason = known.get((module, func, before, after))
        must = module in EXPLAINED_FILES
        if reason is not None:
            explained += 1
            mark = "explained"
        elif must:
            unexplained += 1
            mark = "NOT EXPLAINED"
        else:
            mark = "not required"
        print("%s [%s, %s] %s.%s\n    - %s\n    + %s" % (name, status, mark, module, func, before, after))
        if reason:
            print("    why: " + reason)
    print("\n== mutation testing of firmware/fsm and firmware/interlock (crypto, codes, timebase) ==")
    tried = len(results) - counts.get("not checked", 0)
    print("mutants: %d, tried: %d" % (len(results), tried))
    for status in sorted(counts):
        print("  %s: %d" % (status, counts[status]))
    print("survivors explained in %s: %d" % (EQUIVALENT.relative_to(ROOT), explained))
    print("survivors in %s without an explanation: %d" % (", ".join(f + ".py" for f in EXPLAINED_FILES),
                                                          unexplained))
    if unchecked:
        print("mutants in those files not run yet: %d" % unchecked)
    return 1 if unexplained or unchecked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
