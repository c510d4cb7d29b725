"""The drill framework: each drill kills what it names with SIGKILL, checks the outcome and answers a report.

The promise they test: a message the facade answered 201 for is never lost and never duplicated, as long
as one Hazelcast member is left. A drill drives a controller, the launcher's `System` or the Docker
adapter (scripts/labctl/docker_control.py). Every load is bounded in count and time, every request has a
timeout, and a drill ends by starting again whatever it killed or stopped.
"""

from __future__ import annotations

import functools
import time
import traceback
import uuid as uuid_module
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from labctl.control import ControlError, Controller
from labctl.drills.delivery import (
    FACADE,
    NEW_PROCESS,
    READ_TIMEOUT,
    Delivery,
    Tally,
    logged_texts,
    read_delivery,
    read_tallies,
    readable_through_facade,
    redelivery_offers,
    tally_problem,
)
from labctl.drills.report import Event, Report, clock
from labctl.journals import processed_twice, read_journals, who
from labctl.load import Outcome, Poster, failure_summary
from labctl.probe import ServiceHealth, service_health, wait_for

SETTLE_TIMEOUT = 45.0  # for the queue to drain into the messages copies (a few seconds when all is well)
TALLY_TIMEOUT = 10.0  # for each copy's count to catch up with its records (counted after the commit)

Out = Callable[[str], None]


class DrillError(RuntimeError):
    """A drill cannot go on (the system is not ready, the cluster will not tell what it needs)."""



class DrillRun:
    """One drill being run: the controller, the report being written, and what is down."""

    def __init__(self, controller: Controller, report: Report, out: Out):
        self.controller = controller
        self.report = report
        self.out = out
        self.down: list[str] = []
        self.frozen: list[str] = []
        self.tag = f"{report.drill}-{uuid_module.uuid4().hex[:4]}-"
        report.tag = self.tag
        self.failed: list[Outcome] = []  # every POST of the drill's loads not answered 201
        self.loading = False  # a load has begun: a messages copy may be recording the drill's messages
        self.tallies: dict[str, Tally] = {}  # each messages copy's tally before the drill (or since its restart)
        self.uncounted: dict[str, str] = {}  # messages copies whose tally cannot be compared, and why

    @property
    def facade(self) -> str:
        return self.controller.url(self.controller.names("facade")[0])

    def note(self, what: str, at: float | None = None, *, mark: str = "") -> float:
        """Report an event (`mark`: a fault's label on the timeline chart)."""
        at = time.time() if at is None else at
        self.report.events.append(Event(at, what, mark))
        self.out(f"{clock(at)}  {what}")
        return at

    def figure(self, label: str, value: object) -> None:
        self.report.figures.append((label, value))

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.report.problems.append(problem)
            self.out(f"problem: {problem}")
        return ok

    def judge_failures_fast(self, failures: list[Outcome], limit: float) -> None:
        """Every POST of a load that failed was a 503, answered within `limit` seconds (the slowest: a figure)."""
        slowest = max((o.elapsed for o in failures), default=0.0)
        self.figure("slowest failed POST (s)", f"{slowest:.1f}")
        not_503 = [o for o in failures if o.status != 503]
        self.check(not not_503, f"{len(not_503)} failed POSTs were not a 503: {failure_summary(not_503)}")
        self.check(slowest <= limit, f"a failed POST took {slowest:.1f} s (over {limit:.0f} s)")

    def recovered(self, seconds: float | None, meaning: str) -> None:
        self.report.recovery_seconds = seconds
        self.report.recovery_meaning = meaning

    def preflight(self) -> None:
        """The system must be whole before anything is killed."""
        try:
            self.controller.wait_healthy(timeout=60)
            self.controller.wait_cluster_safe(len(self.controller.names("member")), timeout=60)
        except ControlError as err:
            raise DrillError(f"the system is not ready, nothing was killed: {err}") from err
        self.tallies = read_tallies(self.controller)
        for copy in self.controller.names("messages"):
            if copy not in self.tallies:
                self.uncounted[copy] = "its counts could not be read before the drill"

    # --- killing and starting ---

    def kill(self, *names: str) -> float:
        """SIGKILL the named processes at the same instant (one thread each); answers the first kill's time."""
        with ThreadPoolExecutor(len(names)) as pool:
            times = list(pool.map(self.controller.kill, names))
        self.down += [n for n in names if n not in self.down]
        self._lose_counts(names, "killed")
        if all(m in self.down for m in self.controller.names("member")):
            for copy in self.controller.names("messages"):
                self.uncounted.setdefault(copy, "the received map was lost with the cluster")
        for name, at in zip(names, times, strict=True):
            self.note(f"killed {name} (SIGKILL)", at, mark=f"kill {name}")
        return min(times)

    def freeze(self, name: str) -> float:
        at = self.controller.freeze(name)
        self.frozen.append(name)
        return self.note(f"froze {name} (SIGSTOP: it hangs with its connections open)", at, mark=f"freeze {name}")

    def thaw(self, name: str) -> float:
        at = self.controller.thaw(name)
        self.frozen.remove(name)
        return self.note(f"thawed {name} (SIGCONT)", at, mark=f"thaw {name}")

    def stop(self, *names: str) -> None:
        for name in names:
            self.controller.terminate(name)
            self.down.append(name)
            self.note(f"stopped {name} (SIGTERM)", mark=f"stop {name}")
        self._lose_counts(names, "stopped")

    def recount(self) -> None:
        """Compare each messages copy's counts from here on (after the whole cluster was lost, say)."""
        self.tallies = read_tallies(self.controller, skip=self.down + self.frozen)
        self.uncounted = {copy: "its counts could not be read when counting began again"
                          for copy in self.controller.names("messages") if copy not in self.tallies}

    def _lose_counts(self, names: tuple[str, ...], how: str) -> None:
        """A messages copy's counts die with its process. Before any load it had recorded none of the drill's
        messages: the new process counts from zero what it lists from then on. During a load, what its old
        process recorded is listed and no longer counted anywhere."""
        for name in names:
            if name not in self.controller.names("messages") or name in self.uncounted:
                continue
            if self.loading:
                self.uncounted[name] = f"{how} during the load"
            else:
                self.tallies[name] = Tally(NEW_PROCESS, self.tallies[name].listed)

    def start(self, *names: str, timeout: float = 90.0) -> float:
        """Start the named processes with their old settings; answers the time they were all healthy."""
        started = time.monotonic()
        for name in names:
            self.controller.start_process(name, wait=False)
            self.note(f"started {name}", mark=f"start {name}")
        self.controller.wait_healthy(list(names), timeout=timeout)
        self.down = [n for n in self.down if n not in names]
        return self.note(f"{', '.join(names)} healthy after {time.monotonic() - started:.1f} s")

    def restore(self) -> None:
        """Thaw what the drill left frozen; start what it left down, members first, and wait for the cluster
        to be safe again."""
        for name in list(self.frozen):
            self.thaw(name)
        if not self.down:
            return
        all_members = self.controller.names("member")
        members = [n for n in self.down if n in all_members]
        services = [n for n in self.down if n not in all_members]
        begun = time.monotonic()
        if members:
            self.start(*members)
            self.controller.wait_cluster_safe(len(all_members), timeout=120)
        if services:
            self.start(*services)
        self.note(f"restored {', '.join(members + services)} in {time.monotonic() - begun:.1f} s")

    # --- load and checks ---

    def poster(self, **options) -> Poster:
        self.loading = True
        return Poster(self.facade, self.tag, **options)

    def post(self, count: int, *, threads: int = 8, tag: str | None = None) -> dict[str, str]:
        """POST `count` messages and wait for the answers; every one must be 201."""
        self.loading = True
        poster = Poster(self.facade, tag or self.tag, threads=threads, count=count, seconds=count + 60.0)
        poster.start().join()
        accepted = poster.accepted
        self.failed += poster.failures
        self.report.outcomes += poster.outcomes
        self.note(f"posted {count}: {len(accepted)} answered 201, failed: {failure_summary(poster.failures)}")
        self.check(len(accepted) == count, f"{count - len(accepted)} of {count} POSTs failed with all nodes up")
        self.report.posted += len(accepted)
        return accepted

    def record_load(self, poster: Poster) -> dict[str, str]:
        """Count a finished continuous load into the report; answers what was accepted."""
        accepted = poster.accepted
        self.failed += poster.failures
        self.report.outcomes += poster.outcomes
        self.report.posted += len(accepted)
        self.figure("POSTs sent", len(poster.outcomes))
        self.figure("POSTs failed", failure_summary(poster.failures))
        return accepted

    def wait_readable(self, uuids: dict[str, str], when: str, timeout: float = 60.0) -> float | None:
        """Until GET /facade shows every uuid; answers the seconds that took (None if it never did)."""
        count, seconds = wait_for(lambda: readable_through_facade(self.facade, uuids),
                                  lambda n: n == len(uuids), timeout)
        self.figure(f"readable through the facade {when}", f"{count or 0}/{len(uuids)}")
        if self.check(seconds is not None, f"only {count or 0}/{len(uuids)} readable {when} after {timeout:.0f} s"):
            self.note(f"all {len(uuids)} readable through the facade {when} ({seconds:.1f} s)")
        return seconds

    def wait_consumed(self, uuids: dict[str, str], timeout: float = 30.0) -> None:
        """Until the messages copies hold every uuid: a drill about the map kills nothing while consumer
        transactions hold messages (member-loss is the drill that does)."""
        _, seconds = wait_for(lambda: self.read(uuids, facade=False), lambda d: d.complete(uuids), timeout,
                              interval=0.2)
        if self.check(seconds is not None, f"the messages copies did not take all {len(uuids)} within {timeout:.0f} s"):
            self.note(f"all {len(uuids)} consumed before the kill")

    def read(self, uuids: Iterable[str], *, facade: bool = True) -> Delivery:
        """Every copy that is up (and GET /facade) on the posted uuids."""
        return read_delivery(self.controller, uuids, skip=self.down + self.frozen,
                             facade=self.facade if facade else None)

    def settle(self, uuids: dict[str, str], timeout: float = SETTLE_TIMEOUT, *,
               failed: list[Outcome] | None = None) -> float | None:
        """Wait (bounded) until every posted message is listed by every logging copy, the facade's merged view
        and one messages copy, then count loss, duplication and other texts into the report, check each
        messages copy's own counts and answers the time it was complete (None if never). POSTs that failed
        (by default every failed POST of the drill's loads) may be logged all the same: whatever of them is
        logged must be received too (redelivery's promise)."""
        failed = self.failed if failed is None else failed
        if failed:
            stored = logged_texts(self.controller, [o.msg for o in failed], skip=self.down + self.frozen)
            self.check(stored is not None, "no logging copy answered: failed POSTs could not be looked for")
            self.figure("failed POSTs logged anyway", len(stored or {}))
            uuids = {**uuids, **(stored or {})}
        self.report.settled = dict(uuids)
        delivery, _ = wait_for(lambda: self.read(uuids), lambda d: d.complete(uuids), timeout, interval=0.5)
        done_at = time.time()
        if delivery is None:
            self.check(False, "nothing could be read back")
            return None
        self._count_delivery(delivery, uuids)
        self._check_tallies()
        offered_again = redelivery_offers(self.controller)
        if offered_again is not None:
            self.figure("offered again by redelivery", offered_again)
        if delivery.complete(uuids):
            self.note(f"all {len(uuids)} logged and received, every copy and the facade read")
            return done_at
        return None

    def _count_delivery(self, delivery: Delivery, uuids: dict[str, str]) -> None:
        report = self.report
        report.lost += [f"{uuids[u]}:{u}" for u in delivery.lost(uuids)]
        report.duplicated += [f"{uuids[u]}:{u}" for u in delivery.duplicated(uuids)]
        other_texts = delivery.with_other_text(uuids)
        report.wrong_text += [f"{uuids[u]}:{u}" for u in sorted({u for us in other_texts.values() for u in us})]
        for reader, wrong in other_texts.items():
            self.check(False, f"{reader} lists {len(wrong)} with another text")
        for reader, lacking in delivery.short(uuids).items():
            self.check(False, f"{reader} lacks {len(lacking)} that the map holds")
        self.check(not delivery.unreadable, f"could not read {', '.join(delivery.unreadable)}")
        if delivery.facade is not None:
            self.check(delivery.facade.asked is not None,
                       f"{FACADE} answered without a messages copy: {delivery.facade.error}")
            wrong = delivery.misattributed(uuids)
            self.check(not wrong, f"{FACADE} marks {len(wrong)} as received by a copy that does not list them")
        total = len(uuids)
        for copy in self.controller.names("logging"):
            held = delivery.logging.get(copy)
            self.figure(f"GET /logging of {copy}", f"{held.right(uuids)}/{total}" if held else self._absent(copy))
        if delivery.facade is not None:
            self.figure(f"{FACADE} (merged)", f"{delivery.facade.merged.right(uuids)}/{total}")
        for copy in self.controller.names("messages"):
            held = delivery.messages.get(copy)
            self.figure(f"GET /messages of {copy}", held.right(uuids) if held else self._absent(copy))
        self.figure("received once, posted text", f"{delivery.received_once(uuids)}/{total}")

    def _absent(self, copy: str) -> str:
        return "- (down)" if copy in self.down else "- (frozen)" if copy in self.frozen else "- (no answer)"

    def _check_tallies(self) -> None:
        """Each messages copy's own count of what it recorded against what the received map credits it with,
        over the drill: a message recorded by two copies (one writing over the other's record) shows on both."""
        counted = [c for c in self.controller.names("messages")
                   if c not in self.uncounted and c not in self.down and c not in self.frozen]

        def changes() -> dict[str, Tally]:
            now = read_tallies(self.controller, skip=[c for c in self.controller.names("messages") if c not in counted])
            return {c: now[c] - self.tallies[c] for c in counted if c in now}

        def agree(found: dict[str, Tally]) -> bool:
            return len(found) == len(counted) and not any(tally_problem(c, t) for c, t in found.items())

        found, _ = wait_for(changes, agree, TALLY_TIMEOUT, interval=0.5)
        found = found or {}
        for copy in self.controller.names("messages"):
            if copy in found:
                counts = found[copy].counts
                self.figure(f"{copy} counts: received, dropped, redelivered",
                            f"{counts.received}, {counts.dropped}, {counts.redelivered}")
                wrong = tally_problem(copy, found[copy])
                self.check(wrong is None, wrong or "")
            elif copy in counted:
                self.check(False, f"{copy}'s counts could not be read")
            else:
                self.figure(f"{copy} counts: received, dropped, redelivered",
                            f"not compared ({self.uncounted.get(copy) or 'down'})")

    def judge_journals(self) -> None:
        """Every messages copy's journal, read once whatever the drill killed is back (a killed copy's journal
        outlives it): each message the drill settled on must be journaled once at most, in all. A message
        processed twice shows here, where the received map, keyed by uuid, keeps one record of it."""
        settled = self.report.settled
        if not settled:
            return
        journals, unread = read_journals(self.controller, READ_TIMEOUT)
        self.check(not unread, f"could not read the journal of {', '.join(unread)}")
        twice = processed_twice(journals, settled)
        self.report.processed_twice += [f"{settled[u]}:{u} by {who(entries)}" for u, entries in twice.items()]
        journaled = {e.uuid for entries in journals.values() for e in entries if e.uuid in settled}
        self.figure("journaled by some copy (read after the drill)", f"{len(journaled)}/{len(settled)}")
        if twice:
            self.out(f"problem: {len(twice)} processed more than once, as the copies' journals show")

    def facade_health(self) -> ServiceHealth:
        return service_health(self.facade, READ_TIMEOUT)


# --- the drills ----------------------------------------------------------------------------------

DRILLS: dict[str, Callable[..., Report]] = {}


def drill(name: str, title: str):
    """Registers a drill's steps as `function(controller, out=print, **options) -> Report`."""

    def register(steps: Callable[..., None]) -> Callable[..., Report]:
        @functools.wraps(steps)
        def perform(controller: Controller, out: Out = print, **options) -> Report:
            run = DrillRun(controller, Report(name, title), out)
            out(f"drill {name}: {title}")
            try:
                run.preflight()
                steps(run, **options)
            except (DrillError, ControlError) as err:
                run.check(False, f"drill aborted: {err}")
            except Exception as err:  # the report must still be written, and what was killed started again
                out(traceback.format_exc().rstrip())
                run.check(False, f"drill aborted: {type(err).__name__}: {err}")
            finally:
                try:
                    run.restore()
                except Exception as err:  # a failed restore is reported, not hidden behind the drill's result
                    run.check(False, f"could not restore {', '.join(run.down)}: {err}")
            try:
                run.judge_journals()
            except Exception as err:
                run.check(False, f"the journals could not be judged: {type(err).__name__}: {err}")
            return run.report

        perform.title = title
        DRILLS[name] = perform
        return perform

    return register


def run_drill(name: str, controller: Controller, out: Out = print, **options) -> Report:
    if name not in DRILLS:
        raise DrillError(f"no drill named {name!r}; known: {', '.join(DRILLS)}")
    return DRILLS[name](controller, out, **options)
