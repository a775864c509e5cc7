"""`make mutate`: mutation testing of the state machine (firmware/fsm) and of the contract modules it computes
with (firmware/interlock: crypto, codes, timebase) with mutmut.

mutmut names a mutant after its file's path (fsm/machine.py -> fsm.machine) and only activates it when the
running code's module has that name; the tests import the firmware as `fsm` and `interlock` (host_sim puts
firmware/ on sys.path). So the run happens in a workspace, build/mutation/, that holds the state machine as fsm/
and the contract as interlock/ beside the rest of the firmware (firmware/ without them), host_sim/, tests/ and
pyproject.toml, with the configuration in tests/mutation/setup.cfg (source paths, the files mutated and the
fast test selection).

At the end it prints the mutants tried, killed, survived (and any timeouts or other outcomes), then every
survivor with its diff. A timeout (the tests ran past the limit of setup.cfg's timeout_multiplier, as they do
when a mutant loops for ever, but also on a machine too busy) is listed with the survivors: run it again. Survivors in the files whose survivors must each be killed or explained
(EXPLAINED_FILES) are matched against tests/mutation/EQUIVALENT.md, where each entry gives the function, the
changed line before and after, and why the change cannot be seen; the exit status is 1 while any survivor
there has no entry.

    .venv/bin/python tests/mutation/run.py [--jobs N] [--keep | --report] [MUTANT_GLOB ...]

--keep reuses the workspace and mutmut's cached results (only mutants of changed functions run again; a mutant
named on the command line, by its full name or a glob, always runs again, except that a glob of whole files,
like 'fsm.machine*', runs only those files' mutants that have no result yet). --report runs nothing: it
reports the cached results of the mutants the globs select.

Only the files the globs can select are mutated in a run (the others are copied as they are), so the tests run
without mutmut's call trampolines in the modules not under test, with the same verdicts: the scenario corpus
and the replay tests take 30 s of CPU with the five files that must be explained mutated, 51 s with every
file mutated (the whole selection unmutated: 15 s). When the set of mutated files changes, mutmut's test map is collected anew.
"""

import argparse
import configparser
import fnmatch
import io
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


def module_of(path):
    """The module a mutated file's mutants are named after: fsm/machine.py -> fsm.machine."""
    return str(path.with_suffix("")).replace(os.sep, ".")


def _literal_prefix(glob):
    """The part of a glob before its first wildcard."""
    return re.split(r"[*?\[]", glob, maxsplit=1)[0]


def scope(names):
    """The files (relative to the workspace) of setup.cfg's only_mutate that the globs can select: all when
    there are none. A file is in when its mutant names (module + '.') and a glob's literal prefix agree as far
    as the shorter goes."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "mutation" / "setup.cfg")
    patterns = [p for p in cfg.get("mutmut", "only_mutate").split("\n") if p.strip()]
    files = sorted({p.relative_to(WORKSPACE) for pat in patterns for p in WORKSPACE.glob(pat.strip())
                    if p.suffix == ".py"})
    if not names:
        return files
    out = []
    for path in files:
        base = module_of(path) + "."
        for g in names:
            prefix = _literal_prefix(g)
            if base.startswith(prefix) or prefix.startswith(base):
                out.append(path)
                break
    return out


def whole_files(names, files):
    """Whether every glob selects whole files of the scope ('fsm.machine*', 'fsm.machine.*')."""
    modules = {module_of(p) for p in files}
    return bool(names) and all(g.endswith("*") and g.rstrip("*").rstrip(".") in modules for g in names)


def write_config(files):
    """The workspace's setup.cfg: tests/mutation/setup.cfg with only_mutate narrowed to these files. A change
    of the mutated files drops mutmut's test map (its entries for unmutated modules would be missing)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "mutation" / "setup.cfg")
    cfg.set("mutmut", "only_mutate", "\n" + "\n".join(str(p) for p in files))
    with open(WORKSPACE / "setup.cfg", "w") as f:
        cfg.write(f)
    marker = WORKSPACE / "mutated-files.txt"
    listed = "\n".join(str(p) for p in files) + "\n"
    if not marker.exists() or marker.read_text() != listed:
        stats = WORKSPACE / "mutants" / "mutmut-stats.json"
        if stats.exists():
            stats.unlink()
        marker.write_text(listed)


def run_mutmut(jobs, names):
    """mutmut run in the workspace; its exit status."""
    mutmut = Path(sys.executable).parent / "mutmut"
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run([str(mutmut), "run", "--max-children", str(jobs), *names], cwd=WORKSPACE,
                          env=env).returncode


def collect():
    """[(mutant name, status, diff)] from mutmut's results in the workspace, for every file setup.cfg mutates
    (also those the last run left unmutated: their diffs come from mutants generated again here)."""
    os.chdir(WORKSPACE)
    sys.path.insert(0, str(WORKSPACE))
    from mutmut.__main__ import (
        SourceFileMutationData,
        get_diff_for_mutant,
        status_by_exit_code,
        write_all_mutants_to_file,
    )

    out = []
    for path in scope([]):
        if not (WORKSPACE / "mutants" / (str(path) + ".meta")).exists():
            continue
        m = SourceFileMutationData(path=path)
        m.load()
        source = None
        if "__mutmut_" not in (WORKSPACE / "mutants" / path).read_text():
            buf = io.StringIO()
            write_all_mutants_to_file(out=buf, source=path.read_text(), filename=path)
            source = buf.getvalue()
        for name, code in sorted(m.exit_code_by_key.items(), key=lambda kv: _natural(kv[0])):
            status = status_by_exit_code[code]
            diff = ""
            if status not in ("killed", "not checked"):
                diff = get_diff_for_mutant(name, source=source, path=m.path)
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
        files = scope(args.names)
        if not files:
            print("no mutated file matches " + " ".join(args.names))
            return 2
        write_config(files)
        # with --keep, globs of whole files run those files' mutants that have no result yet (mutmut runs
        # every mutant it is given by name)
        names = [] if args.keep and whole_files(args.names, files) else args.names
        rc = run_mutmut(args.jobs, names)
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
