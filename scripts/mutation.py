"""labctl mutate: break each guarantee's key line, one at a time, in a copy of the repository, and run the tests
that should then fail. A mutation the tests do not catch is a promise no test holds. Never touches the tree
it is run from: the tests run in a temporary copy of it (tracked and untracked files, not ignored ones).

Not part of `make test` (each mutation starts real members and services): `make mutate`. The last run, and how
long it took: docs/fault-tolerance.md, "The mutation check".
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

from scripts.deps import ROOT
from scripts.table import render

Out = Callable[[str], None]
TIMEOUT = 600.0  # seconds one mutation's tests may take
INTERRUPT_GRACE = 120.0  # after a timeout: how long pytest gets to stop the systems its fixtures started


class MutationError(Exception):
    """A mutation cannot be applied as written (its line is not in the file, or not once)."""


@dataclass(frozen=True)
class Edit:
    old: str  # exact text, found exactly once in the file
    new: str


@dataclass(frozen=True)
class Mutation:
    name: str
    breaks: str  # the guarantee, in the README's words
    path: str  # relative to the repository
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids that must fail with it


E2E_LOGGING_FAILS = ("tests/e2e/test_system.py::"
                     "test_a_post_whose_logging_fails_answers_503_and_its_message_is_never_delivered")
E2E_OFFER_FAILS = ("tests/e2e/test_promise.py::"
                   "test_a_post_whose_queue_offer_fails_after_logging_is_a_503_stays_logged_is_redelivered_and_a_"
                   "retry_converges")
CONSUMER_TESTS = "tests/integration/test_queue_consumer.py::"
LOG_LINE = "        stored = self._logging.log(uuid, msg, request_id, window=self.retry_window.for_post(wait))\n"
OFFER_LINE = "        self._queue.offer(uuid, msg, request_id)\n"
RECORD_LINE = "            outcome = self._received.record(instance, entries)\n"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation("logging-put", "a repeated uuid is stored once (logging)", "logging_service/store.py",
             (Edit("existing = messages.put_if_absent(message.uuid, value)",
                   "existing = messages.put(message.uuid, value)"),),
             ("tests/integration/test_logging_store.py",)),
    Mutation("consumer-put", "a uuid already recorded is dropped when it is taken again",
             "messages_service/adapters.py",
             (Edit("received.put_if_absent(message.uuid, HazelcastJsonValue(message.to_text()))",
                   "received.put(message.uuid, HazelcastJsonValue(message.to_text()))"),),
             (CONSUMER_TESTS + "test_a_uuid_offered_twice_is_received_once",
              CONSUMER_TESTS + "test_a_uuid_taken_again_by_another_copy_is_dropped_and_the_first_record_stands")),
    Mutation("commit-before-record", "records each uuid with put_if_absent, then commits",
             "messages_service/adapters.py",
             (Edit(RECORD_LINE, "            transaction.commit()\n" + RECORD_LINE),
              Edit("                raise outcome.failure\n            transaction.commit()\n",
                   "                raise outcome.failure\n")),
             (CONSUMER_TESTS + "test_a_batch_not_yet_committed_holds_no_lock_on_what_it_recorded",
              CONSUMER_TESTS + "test_two_consumers_take_every_item_exactly_once_and_their_journals_together_"
                               "hold_each_once")),
    Mutation("no-redelivery", "the message stays logged and is delivered by redelivery",
             "messages_service/redelivery.py",
             (Edit("        now_us = int(now * 1e6)\n", "        return 0\n"),),
             (CONSUMER_TESTS + "test_what_was_logged_but_never_queued_is_offered_again_until_a_copy_receives_it",
              E2E_OFFER_FAILS)),
    Mutation("201-before-logging", "POST answers 201 only when both writes are done", "facade_service/service.py",
             (Edit(LOG_LINE, '        stored = {"msg": msg, "logged_by": "not yet"}; '
                             "self._readers.submit(self._logging.log, uuid, msg, request_id, window=0.0)\n"),),
             ("tests/unit/test_facade_app.py::test_logging_down_answers_503_and_the_message_is_never_queued",
              E2E_LOGGING_FAILS)),
    Mutation("offer-before-log", "nothing is delivered that was not logged", "facade_service/service.py",
             (Edit(LOG_LINE, OFFER_LINE + LOG_LINE),
              Edit(OFFER_LINE + "        self.recent.add(", "        self.recent.add(")),
             ("tests/unit/test_facade_app.py::test_logging_down_answers_503_and_the_message_is_never_queued",
              E2E_LOGGING_FAILS)),
    Mutation("map-one-backup", "any 2 of the 3 members may then die at once without losing it", "hazelcast/member.yaml",
             (Edit("  map:\n    default:\n      backup-count: 2\n", "  map:\n    default:\n      backup-count: 1\n"),),
             ("tests/drills/test_drills.py::test_map_keeps_a_thousand_when_two_of_three_members_die_at_once",)),
)


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
    Raises MutationError, leaving the file as it was, when an edit's text is not found exactly once."""
    path = tree / mutation.path
    text = path.read_text(encoding="utf-8")
    line = None
    for edit in mutation.edits:
        found = text.count(edit.old)
        if found != 1:
            raise MutationError(f"{mutation.name}: {mutation.path} has {found} copies of {edit.old.strip()!r} "
                                "(the code changed: update the mutation)")
        at = text.index(edit.old)
        if line is None:
            same = next((i for i, (a, b) in enumerate(zip(edit.old, edit.new, strict=False)) if a != b),
                        min(len(edit.old), len(edit.new)))
            line = text.count("\n", 0, at + same) + 1
        text = text[:at] + edit.new + text[at + len(edit.old):]
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


def run_tests(tree: Path, tests: Sequence[str], timeout: float = TIMEOUT) -> PytestRun:
    """pytest in `tree` with this interpreter, every test to the end (how many of them fail is the point).
    At the timeout pytest is interrupted (its fixtures stop the systems they started), then killed with
    whatever still runs there."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    child = subprocess.Popen(argv, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
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


def imported_from(tree: Path, module: str) -> Path:
    """Where `module` is imported from by the tests run in `tree` (it must be the copy, not an installed tree)."""
    code = f"import importlib; print(importlib.import_module({module!r}).__file__)"
    answer = subprocess.run([sys.executable, "-c", code], cwd=tree, check=True, capture_output=True, text=True)
    return Path(answer.stdout.strip())


# --- the whole check --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    mutation: Mutation
    line: int
    result: str
    seconds: float
    failed: tuple[str, ...]

    @property
    def caught(self) -> bool:
        return self.result.startswith("caught")


def check_mutations(mutations: Sequence[Mutation], out: Out, *, root: Path = ROOT, timeout: float = TIMEOUT,
                    keep: bool = False) -> list[Row] | None:
    """Each mutation applied alone to a copy of `root`, its tests run; None when the tests fail unmutated."""
    tree = Path(tempfile.mkdtemp(prefix="lab-mutate-")).resolve()
    try:
        copy_repository(root, tree)
        out(f"copy of {root} in {tree}")
        for mutation in mutations:  # a mutation whose line has changed stops everything before any test runs
            original = (tree / mutation.path).read_text(encoding="utf-8")
            apply(mutation, tree)
            (tree / mutation.path).write_text(original, encoding="utf-8")
        everything = list(dict.fromkeys(test for m in mutations for test in m.tests))
        out(f"unmutated: {len(everything)} test targets")
        baseline = run_tests(tree, everything, timeout * 2)
        out(f"  {'passed' if baseline.exit_code == 0 else 'did not pass'} (pytest exit {baseline.exit_code}) "
            f"in {baseline.seconds:.0f} s")
        if baseline.exit_code != 0:
            out(baseline.output[-4000:])
            return None
        rows = []
        for mutation in mutations:
            original = (tree / mutation.path).read_text(encoding="utf-8")
            line = apply(mutation, tree)
            try:
                module = module_of(mutation.path)
                if module and not imported_from(tree, module).is_relative_to(tree):
                    raise MutationError(f"{module} is not imported from the copy: the mutation would not run")
                out(f"{mutation.name}: {mutation.path}:{line}, {len(mutation.tests)} test target(s)")
                run = run_tests(tree, mutation.tests, timeout)
            finally:
                (tree / mutation.path).write_text(original, encoding="utf-8")
            rows.append(Row(mutation, line, verdict(run), run.seconds, run.failed))
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
                     [(r.mutation.name, f"{r.mutation.path}:{r.line}", ", ".join(_suites(r.mutation.tests)), r.result,
                       f"{r.seconds:.0f} s") for r in rows])
    named = [f"{r.mutation.name}: " + ", ".join(r.mutation.tests) for r in rows]
    return summary + "\n\n" + "\n".join(named)


def _suites(tests: Sequence[str]) -> list[str]:
    """tests/integration/test_x.py::test_y -> integration/test_x (once per file)"""
    return list(dict.fromkeys(str(Path(t.partition("::")[0]).relative_to("tests").with_suffix("")) for t in tests))


def run_mutate(args, out: Out) -> int:
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list:
        out(render(["MUTATION", "BREAKS", "FILE", "TESTS"],
                   [(m.name, m.breaks, m.path, len(m.tests)) for m in MUTATIONS]))
        return 0
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        out(f"no mutation named {', '.join(sorted(unknown))}; `labctl mutate --list` names them")
        return 1
    try:
        rows = check_mutations(chosen, out, timeout=args.timeout, keep=args.keep)
    except MutationError as err:
        out(f"labctl mutate: {err}")
        return 1
    if rows is None:
        out("the tests fail without any mutation: nothing to learn from the mutations")
        return 1
    out("\n" + table(rows))
    missed = [r.mutation.name for r in rows if not r.caught]
    out(f"\n{len(rows) - len(missed)} of {len(rows)} caught" + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


def add_arguments(parser) -> None:
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these mutations (default: all)")
    parser.add_argument("--list", action="store_true", help="name the mutations and stop")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds one mutation's tests may take")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
