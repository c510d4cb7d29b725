"""labctl mutate: break each guarantee's key code, one mutation at a time, in a copy of the repository, and run
the tests that should then fail. A mutation the tests do not catch is a promise no test holds. Never touches
the tree it is run from: the tests run in a temporary copy of it (tracked and untracked files, not ignored ones).

`make test` runs the fast mutations (`--fast`: their unit and integration tests only) after the suite;
`make mutate` runs them all. The mutations: scripts/labctl/mutation_catalog.py; the last full run:
docs/fault-tolerance.md, "The mutation check".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from labctl.deps import ROOT
from labctl.mutation_catalog import MUTATIONS, Mutation
from labctl.table import render

Out = Callable[[str], None]
TIMEOUT = 600.0  # seconds one mutation's tests may take
INTERRUPT_GRACE = 120.0  # after a timeout: how long pytest gets to stop the systems its fixtures started


class MutationError(Exception):
    """A mutation cannot be applied as written (its pattern is not in the file, or not once)."""


# --- the copy and the mutation ----------------------------------------------------------------------------


def copy_repository(root: Path, into: Path) -> Path:
    """Copy what git sees in `root` (tracked files as they are now, and untracked ones it does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            check=True, capture_output=True).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = root / relative
        if source.is_file():  # a tracked file deleted in the work tree is left out
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def apply(mutation: Mutation, tree: Path) -> int:
    """Apply the mutation's edits to the file in `tree`, in order; the line of the first changed line.
    Raises MutationError, naming the mutation and the pattern and leaving the file as it was, when a pattern
    is not found exactly once (the code changed: the mutation must follow it)."""
    path = tree / mutation.path
    text = path.read_text(encoding="utf-8")
    line = None
    for edit in mutation.edits:
        found = list(re.finditer(edit.pattern, text, re.MULTILINE))
        if len(found) != 1:
            raise MutationError(f"mutation {mutation.name}: {mutation.path} has {len(found)} matches of "
                                f"{edit.pattern!r}, not 1 (the code changed: update the mutation)")
        match = found[0]
        old, new = match.group(0), match.expand(edit.replacement)
        if line is None:
            same = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
            line = text.count("\n", 0, match.start() + same) + 1
        text = text[:match.start()] + new + text[match.end():]
    path.write_text(text, encoding="utf-8")
    return line


def module_of(path: str) -> str | None:
    """The module a Python file is imported as (None for anything else)."""
    if not path.endswith(".py"):
        return None
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


# --- running the tests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PytestRun:
    exit_code: int | None  # None: stopped at the timeout
    seconds: float
    failed: tuple[str, ...]  # node ids pytest reported FAILED or ERROR
    output: str

    @property
    def counts(self) -> dict[str, int]:
        """pytest's closing line as numbers: {"failed": 1, "passed": 8}."""
        lines = self.output.strip().splitlines()
        found = re.findall(r"(\d+) (failed|passed|errors?|xfailed|xpassed|skipped)", lines[-1] if lines else "")
        return {word.rstrip("s") if word.startswith("error") else word: int(n) for n, word in found}


def verdict(run: PytestRun) -> str:
    """What a mutated run says: its tests failed (caught), passed (NOT caught), or could not run."""
    counts = run.counts
    if run.exit_code == 1 and counts.get("failed"):
        return f"caught ({counts['failed']} of {sum(counts.values())} failed)"
    if run.exit_code == 1:  # only errors: a fixture (a system that did not start) broke, no test said anything
        return f"error ({counts.get('error', 0)} in setup or teardown)"
    if run.exit_code == 0:
        return "NOT caught"
    if run.exit_code is None:
        return "timed out"
    return f"error (pytest exit {run.exit_code})"  # 2: interrupted or a collection error, 5: no tests


def failed_tests(output: str) -> tuple[str, ...]:
    found = []
    for line in output.splitlines():
        for prefix in ("FAILED ", "ERROR "):
            if line.startswith(prefix):
                found.append(line[len(prefix):].split(" - ")[0].strip())
    return tuple(found)


def run_tests(tree: Path, tests: Sequence[str], timeout: float = TIMEOUT, *, first_failure: bool = False,
              lean: bool = False) -> PytestRun:
    """pytest in `tree` with this interpreter (`first_failure`: stop at the first failing test, -x; `lean`: no
    plugin but pytest-timeout, which unit and integration tests need alone and which starts several seconds
    sooner on a busy machine). At the timeout pytest is interrupted (its fixtures stop the systems they
    started), then killed with whatever still runs there."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(["-x"] if first_failure else []),
            *(["-p", "pytest_timeout"] if lean else []), *tests]
    env = {**copy_env(tree), **({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} if lean else {})}
    started = time.monotonic()
    child = subprocess.Popen(argv, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True, env=env)
    try:
        output, _ = child.communicate(timeout=timeout)
        code = child.returncode
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGINT)
        try:
            output, _ = child.communicate(timeout=INTERRUPT_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
        code = None
    finally:
        stop_left_behind(tree)
    return PytestRun(code, time.monotonic() - started, failed_tests(output), output)


def stop_left_behind(tree: Path) -> list[int]:
    """SIGKILL any process still running in `tree` (the copy: only what this run started runs there)."""
    killed = []
    for process in psutil.process_iter(["pid", "cwd"]):
        cwd = process.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(tree) and process.pid != os.getpid():
            try:
                process.kill()
                killed.append(process.pid)
            except psutil.Error:
                pass
    return killed


def copy_env(tree: Path) -> dict[str, str]:
    """The environment of what runs in the copy: its own labctl first on the path (the installed one maps to the
    original tree, whose launcher would start members with the original member.yaml and services from the
    original code); the services and the tests come from the copy as the working directory."""
    paths = [str(tree / "scripts"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def imported_from(tree: Path, module: str) -> Path:
    """Where `module` is imported from by the tests run in `tree` (it must be the copy, not an installed tree)."""
    code = f"import importlib; print(importlib.import_module({module!r}).__file__)"
    answer = subprocess.run([sys.executable, "-c", code], cwd=tree, check=True, capture_output=True, text=True,
                            env=copy_env(tree))
    return Path(answer.stdout.strip())


# --- the whole check --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    mutation: Mutation
    line: int
    tests: tuple[str, ...]  # the tests run
    result: str
    seconds: float
    failed: tuple[str, ...]

    @property
    def caught(self) -> bool:
        return self.result.startswith("caught")


def tests_of(mutation: Mutation, fast: bool) -> tuple[str, ...]:
    return mutation.fast_tests if fast else mutation.tests


def fits(mutations: Sequence[Mutation], tree: Path) -> None:
    """Apply each mutation and put the file back: one whose pattern is gone stops everything before any test runs."""
    for mutation in mutations:
        original = (tree / mutation.path).read_text(encoding="utf-8")
        try:
            apply(mutation, tree)
        finally:
            (tree / mutation.path).write_text(original, encoding="utf-8")


def check_mutations(mutations: Sequence[Mutation], out: Out, *, root: Path = ROOT, timeout: float = TIMEOUT,
                    keep: bool = False, fast: bool = False, baseline: bool = True) -> list[Row] | None:
    """Each mutation applied alone to one copy of `root` (and put back after) and its tests run: `fast`, only
    its unit and integration tests, up to the first failure (the catch); else all of them, drills included, to
    the end (each named test shown to catch it or not). None when the tests fail unmutated."""
    tree = Path(tempfile.mkdtemp(prefix="lab-mutate-")).resolve()
    try:
        copy_repository(root, tree)
        out(f"copy of {root} in {tree}")
        fits(mutations, tree)
        if baseline:
            everything = list(dict.fromkeys(test for m in mutations for test in tests_of(m, fast)))
            out(f"unmutated: {len(everything)} tests")
            unmutated = run_tests(tree, everything, timeout * 2, lean=fast)
            out(f"  {'passed' if unmutated.exit_code == 0 else 'did not pass'} (pytest exit {unmutated.exit_code}) "
                f"in {unmutated.seconds:.0f} s")
            if unmutated.exit_code != 0:
                out(unmutated.output[-4000:])
                return None
        rows = []
        for mutation in mutations:
            original = (tree / mutation.path).read_text(encoding="utf-8")
            line = apply(mutation, tree)
            try:
                module = module_of(mutation.path)
                for needed in filter(None, (module, "labctl.deps")):  # labctl.deps: the launcher's tree
                    if not imported_from(tree, needed).is_relative_to(tree):
                        raise MutationError(f"{needed} is not imported from the copy: the mutation would not run")
                tests = tests_of(mutation, fast)
                out(f"{mutation.name}: {mutation.path}:{line}, {len(tests)} test(s)")
                run = run_tests(tree, tests, timeout, first_failure=fast, lean=fast)
            finally:
                (tree / mutation.path).write_text(original, encoding="utf-8")
            rows.append(Row(mutation, line, tests, verdict(run), run.seconds, run.failed))
            out(f"  {rows[-1].result} in {run.seconds:.0f} s")
            for test in run.failed:
                out(f"    failed: {test}")
        return rows
    finally:
        stop_left_behind(tree)
        if keep:
            out(f"kept {tree}")
        else:
            shutil.rmtree(tree, ignore_errors=True)


def table(rows: Sequence[Row]) -> str:
    """The summary, then the tests each mutation ran (too long for a column)."""
    summary = render(["MUTATION", "FILE:LINE", "TESTS RUN", "RESULT", "TIME"],
                     [(r.mutation.name, f"{r.mutation.path}:{r.line}", ", ".join(_suites(r.tests)), r.result,
                       f"{r.seconds:.0f} s") for r in rows])
    named = [f"{r.mutation.name}: " + ", ".join(r.tests) for r in rows]
    return summary + "\n\n" + "\n".join(named)


def _suites(tests: Sequence[str]) -> list[str]:
    """tests/integration/test_x.py::test_y -> integration/test_x (once per file)"""
    return list(dict.fromkeys(str(Path(t.partition("::")[0]).relative_to("tests").with_suffix("")) for t in tests))


def run_mutate(args, out: Out) -> int:
    if args.list:
        out(render(["MUTATION", "BREAKS", "FILE", "FAST", "TESTS"],
                   [(m.name, m.breaks, m.path, "yes" if m.fast else "no", len(m.tests)) for m in MUTATIONS]))
        return 0
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        out(f"no mutation named {', '.join(sorted(unknown))}; `labctl mutate --list` names them")
        return 1
    chosen = [m for m in MUTATIONS if (not args.only or m.name in args.only) and (m.fast or not args.fast)]
    started = time.monotonic()
    try:
        rows = check_mutations(chosen, out, timeout=args.timeout, keep=args.keep, fast=args.fast,
                               baseline=not args.no_baseline)
    except MutationError as err:
        out(f"labctl mutate: {err}")
        return 1
    if rows is None:
        out("the tests fail without any mutation: nothing to learn from the mutations")
        return 1
    out("\n" + table(rows))
    missed = [r.mutation.name for r in rows if not r.caught]
    out(f"\n{len(rows) - len(missed)} of {len(rows)} {'fast ' if args.fast else ''}mutations caught in "
        f"{time.monotonic() - started:.0f} s" + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


def add_arguments(parser) -> None:
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these mutations (default: all)")
    parser.add_argument("--fast", action="store_true",
                        help="only the mutations unit or integration tests catch, with only those tests (make test)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="do not run the tests unmutated first (they have just passed: make test)")
    parser.add_argument("--list", action="store_true", help="name the mutations and stop")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds one mutation's tests may take")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
