"""The drill framework: each drill kills what it names with SIGKILL, checks the outcome and answers a report.

The promise they test: a message the facade answered 201 for is never lost and never duplicated, as long
as one Hazelcast member is left. A drill drives a controller, the launcher's `System` or the Docker
adapter (scripts/docker_control.py). Every load is bounded in count and time, every request has a
timeout, and a drill ends by starting again whatever it killed or stopped.
"""

from __future__ import annotations

import functools
import time
import traceback
import uuid as uuid_module
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from scripts.control import ControlError, Controller
from scripts.drills.delivery import (
    READ_TIMEOUT,
    logged_texts,
    read_delivery,
    readable_through_facade,
    redelivery_offers,
)
from scripts.drills.report import Event, Report, clock
from scripts.load import Outcome, Poster, failure_summary
from scripts.probe import ServiceHealth, service_health, wait_for

SETTLE_TIMEOUT = 45.0  # for the queue to drain into the messages copies (a few seconds when all is well)

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

    @property
    def facade(self) -> str:
        return self.controller.url(self.controller.names("facade")[0])

    def note(self, what: str, at: float | None = None) -> float:
        at = time.time() if at is None else at
        self.report.events.append(Event(at, what))
        self.out(f"{clock(at)}  {what}")
        return at

    def figure(self, label: str, value: object) -> None:
        self.report.figures.append((label, value))

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.report.problems.append(problem)
            self.out(f"problem: {problem}")
        return ok

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

    # --- killing and starting ---

    def kill(self, *names: str) -> float:
        """SIGKILL the named processes at the same instant (one thread each); answers the first kill's time."""
        with ThreadPoolExecutor(len(names)) as pool:
            times = list(pool.map(self.controller.kill, names))
        self.down += [n for n in names if n not in self.down]
        for name, at in zip(names, times, strict=True):
            self.note(f"killed {name} (SIGKILL)", at)
        return min(times)

    def freeze(self, name: str) -> float:
        at = self.controller.freeze(name)
        self.frozen.append(name)
        return self.note(f"froze {name} (SIGSTOP: it hangs with its connections open)", at)

    def thaw(self, name: str) -> float:
        at = self.controller.thaw(name)
        self.frozen.remove(name)
        return self.note(f"thawed {name} (SIGCONT)", at)

    def stop(self, *names: str) -> None:
        for name in names:
            self.controller.terminate(name)
            self.down.append(name)
            self.note(f"stopped {name} (SIGTERM)")

    def start(self, *names: str, timeout: float = 90.0) -> float:
        """Start the named processes with their old settings; answers the time they were all healthy."""
        started = time.monotonic()
        for name in names:
            self.controller.start_process(name, wait=False)
            self.note(f"started {name}")
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
        return Poster(self.facade, self.tag, **options)

    def post(self, count: int, *, threads: int = 8, tag: str | None = None) -> dict[str, str]:
        """POST `count` messages and wait for the answers; every one must be 201."""
        poster = Poster(self.facade, tag or self.tag, threads=threads, count=count, seconds=count + 60.0)
        poster.start().join()
        accepted = poster.accepted
        self.note(f"posted {count}: {len(accepted)} answered 201, failed: {failure_summary(poster.failures)}")
        self.check(len(accepted) == count, f"{count - len(accepted)} of {count} POSTs failed with all nodes up")
        self.report.posted += len(accepted)
        return accepted

    def record_load(self, poster: Poster) -> dict[str, str]:
        """Count a finished continuous load into the report; answers what was accepted."""
        accepted = poster.accepted
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
        _, seconds = wait_for(lambda: read_delivery(self.controller, uuids), lambda d: d.complete(uuids), timeout,
                              interval=0.2)
        if self.check(seconds is not None, f"the messages copies did not take all {len(uuids)} within {timeout:.0f} s"):
            self.note(f"all {len(uuids)} consumed before the kill")

    def settle(self, uuids: dict[str, str], timeout: float = SETTLE_TIMEOUT, *,
               failed: list[Outcome] = ()) -> float | None:
        """Wait (bounded) until every posted uuid is logged and received, then count loss and duplication
        into the report; answers the time it was complete (None if never). POSTs that `failed` may be logged
        all the same: whatever of them is logged must be received too (redelivery's promise)."""
        if failed:
            stored = logged_texts(self.controller, [o.msg for o in failed]) or {}
            self.figure("POSTs that failed but were logged all the same", len(stored))
            uuids = {**uuids, **stored}
        delivery, _ = wait_for(lambda: read_delivery(self.controller, uuids), lambda d: d.complete(uuids), timeout,
                               interval=0.5)
        done_at = time.time()
        if delivery is None:
            self.check(False, "nothing could be read back")
            return None
        self.report.lost += [f"{uuids[u]}:{u}" for u in delivery.lost(uuids)]
        self.report.duplicated += [f"{uuids[u]}:{u}" for u in delivery.duplicated(uuids)]
        self.check(not delivery.unreadable, f"could not read {', '.join(delivery.unreadable)}")
        if delivery.logged is not None:
            self.figure("in the map (GET /logging), once", sum(1 for u in uuids if delivery.logged[u] == 1))
        for copy, count in delivery.per_copy.items():
            self.figure(f"received by {copy}", count)
        self.figure("received by a messages copy, once", sum(1 for u in uuids if delivery.received[u] == 1))
        offered_again = redelivery_offers(self.controller)
        if offered_again is not None:
            self.figure("offers made again from the logging map (redelivery; each copy since its start)", offered_again)
        if delivery.complete(uuids):
            self.note(f"all {len(uuids)} logged and received")
            return done_at
        return None

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
            return run.report

        perform.title = title
        DRILLS[name] = perform
        return perform

    return register


def run_drill(name: str, controller: Controller, out: Out = print, **options) -> Report:
    if name not in DRILLS:
        raise DrillError(f"no drill named {name!r}; known: {', '.join(DRILLS)}")
    return DRILLS[name](controller, out, **options)
