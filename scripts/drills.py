"""Node-kill drills: each kills what it names with SIGKILL, checks the outcome and answers a report.

The promise they test: a message the facade answered 201 for is never lost and never duplicated, as long
as one Hazelcast member is left. A drill drives a controller, the launcher's `System` or the Docker
adapter (scripts/docker_control.py). Every load is bounded in count and time, every request has a
timeout, and a drill ends by starting again whatever it killed or stopped.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import traceback
import uuid as uuid_module
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import requests

from scripts.launcher import LauncherError
from scripts.table import render

QUEUE_NAME = "messages-queue"  # Settings.messages_queue default
POST_TIMEOUT = 30.0  # above the facade's worst case: 3 logging calls of 2 s, then 3 queue offers of 5 s
READ_TIMEOUT = 15.0
SETTLE_TIMEOUT = 45.0  # for the queue to drain into the messages copies (a few seconds when all is well)
FAIL_FAST_SECONDS = 10.0  # a POST the system cannot take must be answered 503 within this

T = TypeVar("T")
Out = Callable[[str], None]


class DrillError(RuntimeError):
    """A drill cannot go on (the system is not ready, the cluster will not tell what it needs)."""


class Controller(Protocol):
    """What a drill needs from a deployment: the launcher's System and the Docker adapter provide it."""

    def names(self, kind: str | None = None) -> list[str]: ...

    def url(self, name: str) -> str: ...

    def kill(self, name: str) -> float: ...

    def terminate(self, name: str, timeout: float = 20.0) -> None: ...

    def start_process(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None: ...

    def wait_healthy(self, names: list[str] | None = None, *, timeout: float = 120.0, progress=None) -> None: ...

    def health(self, name: str, timeout: float = 1.0) -> tuple[bool, str]: ...

    def status(self) -> list[dict]: ...

    def wait_cluster_safe(self, size: int, timeout: float = 60.0) -> None: ...

    def hazelcast_cluster(self) -> tuple[str, dict[str, str]]: ...


def clock(at: float) -> str:
    """Wall-clock time with milliseconds: 12:03:04.120."""
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def wait_for(probe: Callable[[], T], ok: Callable[[T], bool], timeout: float,
             interval: float = 0.25) -> tuple[T | None, float | None]:
    """Probe until `ok` holds or `timeout` passes: the last value read, and the seconds it took (None if never).
    A probe that fails (no answer, not JSON) counts as not yet."""
    started = time.monotonic()
    value = None
    while True:
        try:
            value = probe()
        except (requests.RequestException, ValueError, KeyError):
            pass
        else:
            if ok(value):
                return value, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return value, None
        time.sleep(interval)


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: float
    what: str


@dataclass
class Report:
    """What a drill did (events) and found (figures, loss, duplication, problems, time to recover)."""

    drill: str
    title: str
    events: list[Event] = field(default_factory=list)
    figures: list[tuple[str, object]] = field(default_factory=list)
    posted: int = 0  # answered 201: what the promise covers
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recovery_seconds: float | None = None
    recovery_meaning: str = ""

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        reasons = [f"{len(self.lost)} lost"] if self.lost else []
        reasons += [f"{len(self.duplicated)} duplicated"] if self.duplicated else []
        return "FAIL - " + "; ".join(reasons + self.problems)

    def value_of(self, label: str) -> object:
        """The value of the first figure with this label."""
        for name, value in self.figures:
            if name == label:
                return value
        raise KeyError(label)

    def to_text(self) -> str:
        events = render(["TIME", "EVENT"], [(clock(e.at), e.what) for e in sorted(self.events, key=lambda e: e.at)])
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f} s"
        summary = [
            *self.figures,
            ("posted, answered 201", self.posted),
            ("lost", len(self.lost)),
            ("duplicated", len(self.duplicated)),
            ("time to recover" + (f" ({self.recovery_meaning})" if self.recovery_meaning else ""), recovery),
        ]
        lines = [f"drill {self.drill}: {self.title}", "", events, "", render(["WHAT", "COUNT"], summary), ""]
        lines += [f"lost: {' '.join(self.lost[:10])}{' ...' if len(self.lost) > 10 else ''}"] if self.lost else []
        lines += [f"duplicated: {' '.join(self.duplicated[:10])}"] if self.duplicated else []
        lines += [f"problem: {p}" for p in self.problems]
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


# --- load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One POST: the uuid on 201, else the status (None when nothing answered) and what went wrong."""

    msg: str
    started: float
    elapsed: float
    status: int | None
    uuid: str | None = None
    error: str | None = None


def post_message(session: requests.Session, facade: str, msg: str, timeout: float = POST_TIMEOUT) -> Outcome:
    """POST one message to the facade and say how it went."""
    started, began = time.time(), time.monotonic()
    try:
        response = session.post(facade + "/facade", data={"msg": msg}, timeout=timeout)
    except requests.RequestException as err:
        return Outcome(msg, started, time.monotonic() - began, None, error=type(err).__name__)
    elapsed = time.monotonic() - began
    if response.status_code == 201:
        try:
            return Outcome(msg, started, elapsed, 201, uuid=response.json()["uuid"])
        except (ValueError, KeyError):
            return Outcome(msg, started, elapsed, 201, error="201 without a uuid")
    return Outcome(msg, started, elapsed, response.status_code, error=response.text.strip()[:200])


class Poster:
    """POSTs through the facade from `threads` threads until stopped, `count` sent or `seconds` passed,
    recording every outcome."""

    def __init__(self, facade: str, tag: str, *, threads: int = 4, count: int | None = None,
                 seconds: float = 120.0, timeout: float = POST_TIMEOUT):
        self._url = facade
        self._tag = tag
        self._count = count
        self._seconds = seconds
        self._timeout = timeout
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = 0.0
        self._threads = [threading.Thread(target=self._post_until_done, name=f"poster-{i}", daemon=True)
                         for i in range(threads)]
        self.outcomes: list[Outcome] = []

    def start(self) -> Poster:
        self._deadline = time.monotonic() + self._seconds
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        """Until every thread is done: bounded by the deadline plus one request's timeout."""
        for thread in self._threads:
            thread.join(max(0.0, self._deadline - time.monotonic()) + self._timeout + 5.0)

    def wait_accepted(self, count: int, timeout: float) -> bool:
        _, seconds = wait_for(lambda: len(self.accepted), lambda n: n >= count, timeout, interval=0.05)
        return seconds is not None

    @property
    def accepted(self) -> dict[str, str]:
        """uuid -> msg of every POST answered 201."""
        with self._lock:
            return {o.uuid: o.msg for o in self.outcomes if o.uuid}

    @property
    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if not o.uuid]

    def _next_message(self) -> str | None:
        with self._lock:
            number = next(self._numbers)
        if self._count is not None and number > self._count:
            return None
        return f"{self._tag}{number}"

    def _post_until_done(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                msg = self._next_message()
                if msg is None:
                    return
                outcome = post_message(session, self._url, msg, self._timeout)
                with self._lock:
                    self.outcomes.append(outcome)


def failure_summary(failures: Iterable[Outcome]) -> str:
    """'12 x 503, 1 x ReadTimeout' (or 'none')."""
    kinds = Counter(str(o.status) if o.status is not None else o.error for o in failures)
    return ", ".join(f"{n} x {kind}" for kind, n in kinds.most_common()) or "none"


# --- what the system holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How many times each posted uuid is in the map (GET /logging) and across the messages copies
    (GET /messages on each); `logged` is None when no logging copy answered."""

    logged: Counter | None
    received: Counter
    per_copy: dict[str, int]
    unreadable: tuple[str, ...] = ()

    def lost(self, uuids: Iterable[str]) -> list[str]:
        return [u for u in uuids if (self.logged is not None and not self.logged[u]) or not self.received[u]]

    def duplicated(self, uuids: Iterable[str]) -> list[str]:
        return [u for u in uuids if (self.logged is not None and self.logged[u] > 1) or self.received[u] > 1]

    def complete(self, uuids: Iterable[str]) -> bool:
        return not self.unreadable and not self.lost(uuids)


def _get_json(url: str) -> dict:
    response = requests.get(url, timeout=READ_TIMEOUT)
    response.raise_for_status()
    return response.json()


def read_delivery(controller: Controller, uuids: Iterable[str]) -> Delivery:
    wanted = set(uuids)
    unreadable = []
    logged = None
    for name in controller.names("logging"):
        try:
            listing = _get_json(controller.url(name) + "/logging")["messages"]
        except (requests.RequestException, ValueError, KeyError):
            continue
        logged = Counter(m["uuid"] for m in listing if m["uuid"] in wanted)
        break
    if logged is None:
        unreadable.append("every logging copy")
    received: Counter = Counter()
    per_copy = {}
    for name in controller.names("messages"):
        try:
            listing = _get_json(controller.url(name) + "/messages")["messages"]
        except (requests.RequestException, ValueError, KeyError):
            unreadable.append(name)
            continue
        mine = [m["uuid"] for m in listing if m["uuid"] in wanted]
        per_copy[name] = len(mine)
        received.update(mine)
    return Delivery(logged, received, per_copy, tuple(unreadable))


def redelivery_offers(controller: Controller) -> int | None:
    """How many messages the messages copies' redelivery checks offered again (None if none answers)."""
    counts = []
    for name in controller.names("messages"):
        try:
            checks = _get_json(controller.url(name) + "/health")["checks"]
            counts.append(checks["redelivery"]["detail"]["offered_again"])
        except (requests.RequestException, ValueError, KeyError, TypeError):
            continue
    return sum(counts) if counts else None


def readable_through_facade(facade: str, uuids: Iterable[str]) -> int:
    """How many of the uuids GET /facade shows as logged."""
    wanted = set(uuids)
    return len({m["uuid"] for m in _get_json(facade + "/facade")["logging"]["messages"] if m["uuid"] in wanted})


def queue_owner(controller: Controller, queue_name: str = QUEUE_NAME, timeout: float = 5.0) -> str:
    """The member (member-N) owning the queue's partition, as the cluster's partition table tells a client."""
    import hazelcast

    cluster_name, addresses = controller.hazelcast_cluster()
    names_by_address = {address: name for name, address in addresses.items()}
    client = hazelcast.HazelcastClient(
        cluster_name=cluster_name, cluster_members=list(addresses.values()), cluster_connect_timeout=timeout,
        invocation_timeout=timeout, connection_timeout=2.0, statistics_enabled=False,
    )
    try:
        partitions = client.partition_service

        def owner_address() -> str | None:
            members = {m.uuid: f"{m.address.host}:{m.address.port}" for m in client.cluster_service.get_members()}
            return members.get(partitions.get_partition_owner(partitions.get_partition_id(queue_name)))

        address, _ = wait_for(owner_address, lambda a: a is not None, timeout, interval=0.1)
    finally:
        client.shutdown()
    if address not in names_by_address:
        raise DrillError(f"the cluster names {address} as the owner of {queue_name}, which is no member known here")
    return names_by_address[address]


# --- a drill in progress -------------------------------------------------------------------------


class DrillRun:
    """One drill being run: the controller, the report being written, and what is down."""

    def __init__(self, controller: Controller, report: Report, out: Out):
        self.system = controller
        self.report = report
        self.out = out
        self.down: list[str] = []
        self.tag = f"{report.drill}-{uuid_module.uuid4().hex[:4]}-"

    @property
    def facade(self) -> str:
        return self.system.url(self.system.names("facade")[0])

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
            self.system.wait_healthy(timeout=60)
            self.system.wait_cluster_safe(len(self.system.names("member")), timeout=60)
        except LauncherError as err:
            raise DrillError(f"the system is not ready, nothing was killed: {err}") from err

    # --- killing and starting ---

    def kill(self, *names: str) -> float:
        """SIGKILL the named processes at the same instant (one thread each); answers the first kill's time."""
        with ThreadPoolExecutor(len(names)) as pool:
            times = list(pool.map(self.system.kill, names))
        self.down += [n for n in names if n not in self.down]
        for name, at in zip(names, times, strict=True):
            self.note(f"killed {name} (SIGKILL)", at)
        return min(times)

    def stop(self, *names: str) -> None:
        for name in names:
            self.system.terminate(name)
            self.down.append(name)
            self.note(f"stopped {name} (SIGTERM)")

    def start(self, *names: str, timeout: float = 90.0) -> float:
        """Start the named processes with their old settings; answers the time they were all healthy."""
        started = time.monotonic()
        for name in names:
            self.system.start_process(name, wait=False)
            self.note(f"started {name}")
        self.system.wait_healthy(list(names), timeout=timeout)
        self.down = [n for n in self.down if n not in names]
        return self.note(f"{', '.join(names)} healthy after {time.monotonic() - started:.1f} s")

    def restore(self) -> None:
        """Start what the drill left down, members first, and wait for the cluster to be safe again."""
        if not self.down:
            return
        all_members = self.system.names("member")
        members = [n for n in self.down if n in all_members]
        services = [n for n in self.down if n not in all_members]
        begun = time.monotonic()
        if members:
            self.start(*members)
            self.system.wait_cluster_safe(len(all_members), timeout=120)
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
        _, seconds = wait_for(lambda: read_delivery(self.system, uuids), lambda d: d.complete(uuids), timeout,
                              interval=0.2)
        if self.check(seconds is not None, f"the messages copies did not take all {len(uuids)} within {timeout:.0f} s"):
            self.note(f"all {len(uuids)} consumed before the kill")

    def settle(self, uuids: dict[str, str], timeout: float = SETTLE_TIMEOUT) -> float | None:
        """Wait (bounded) until every posted uuid is logged and received, then count loss and duplication
        into the report; answers the time it was complete (None if never)."""
        delivery, _ = wait_for(lambda: read_delivery(self.system, uuids), lambda d: d.complete(uuids), timeout,
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
        offered_again = redelivery_offers(self.system)
        if offered_again is not None:
            self.figure("offers made again from the logging map (redelivery; each copy since its start)", offered_again)
        if delivery.complete(uuids):
            self.note(f"all {len(uuids)} logged and received")
            return done_at
        return None

    def facade_health(self) -> tuple[int, dict]:
        response = requests.get(self.facade + "/health", timeout=READ_TIMEOUT)
        return response.status_code, response.json()


# --- the drills ----------------------------------------------------------------------------------

DRILLS: dict[str, Callable[..., Report]] = {}


def drill(name: str, title: str):
    """Registers a drill's steps as `function(controller, out=print, **options) -> Report`."""

    def register(steps: Callable[..., None]) -> Callable[..., Report]:
        @functools.wraps(steps)
        def run(controller: Controller, out: Out = print, **options) -> Report:
            session = DrillRun(controller, Report(name, title), out)
            out(f"drill {name}: {title}")
            try:
                session.preflight()
                steps(session, **options)
            except (DrillError, LauncherError) as err:
                session.check(False, f"drill aborted: {err}")
            except Exception as err:  # the report must still be written, and what was killed started again
                out(traceback.format_exc().rstrip())
                session.check(False, f"drill aborted: {type(err).__name__}: {err}")
            finally:
                try:
                    session.restore()
                except Exception as err:  # a failed restore is reported, not hidden behind the drill's result
                    session.check(False, f"could not restore {', '.join(session.down)}: {err}")
            return session.report

        run.title = title
        DRILLS[name] = run
        return run

    return register


def run_drill(name: str, controller: Controller, out: Out = print, **options) -> Report:
    if name not in DRILLS:
        raise DrillError(f"no drill named {name!r}; known: {', '.join(DRILLS)}")
    return DRILLS[name](controller, out, **options)


@drill("map-lab", "Map, the lab way: POST msg1..msg10, kill a logging copy with its member, read; "
                  "kill a second pair, read")
def map_lab(run: DrillRun, count: int = 10) -> None:
    accepted = run.post(count, threads=1, tag="msg")
    run.wait_readable(accepted, "before any kill")
    run.wait_consumed(accepted)
    slowest = 0.0
    for copy in run.system.names("logging")[:2]:
        member = "member-" + copy.rsplit("-", 1)[1]  # logging-i is paired with member-i
        run.kill(copy, member)
        seconds = run.wait_readable(accepted, f"after killing {copy} + {member}")
        slowest = max(slowest, seconds or 0.0)
    run.recovered(slowest, "kill -> all readable, slower pair")
    run.settle(accepted)


@drill("map-hard", "Map, the hard way: POST 1,000, kill 2 of the 3 members at the same instant, read all")
def map_hard(run: DrillRun, count: int = 1000) -> None:
    accepted = run.post(count)
    run.wait_readable(accepted, "before the kill")
    run.wait_consumed(accepted)
    victims = run.system.names("member")[:2]
    run.kill(*victims)
    run.recovered(run.wait_readable(accepted, f"after killing {' + '.join(victims)}"), "kill -> all readable")
    run.settle(accepted)


@drill("queue-lab", "Queue, the lab way: stop both messages copies, POST 100, kill the queue's owner, "
                    "start the copies at different times")
def queue_lab(run: DrillRun, count: int = 100, stagger: float = 3.0) -> None:
    consumers = run.system.names("messages")
    run.stop(*consumers)
    accepted = run.post(count)
    owner = queue_owner(run.system)
    run.note(f"{owner} owns the partition of {QUEUE_NAME}")
    killed_at = run.kill(owner)
    first, *rest = consumers
    run.start(first)
    # the second copy starts once the first has taken something (or after `stagger` seconds)
    wait_for(lambda: read_delivery(run.system, accepted).per_copy.get(first, 0), lambda n: n > 0, stagger)
    if rest:
        run.start(*rest)
    done_at = run.settle(accepted)
    run.recovered(None if done_at is None else done_at - killed_at, "kill -> all received, copies restarted between")


@drill("consumer-crash", "Consumer crash: kill a messages copy while 1,000 POSTs are consumed, restart it")
def consumer_crash(run: DrillRun, count: int = 1000, victim: str | None = None) -> None:
    victim = victim or run.system.names("messages")[0]
    poster = run.poster(threads=8, count=count, seconds=count + 60.0).start()
    run.note(f"streaming {count} POSTs")
    run.check(poster.wait_accepted(count * 3 // 10, timeout=60), "the stream of POSTs did not get going")
    run.note(f"{len(poster.accepted)} answered 201 so far")
    killed_at = run.kill(victim)
    back_at = run.start(victim)
    run.recovered(back_at - killed_at, f"kill -> {victim} healthy again")
    poster.join()
    accepted = run.record_load(poster)
    run.note(f"stream done: {len(accepted)} of {count} answered 201")
    run.check(len(accepted) == count, f"{count - len(accepted)} POSTs failed (only a messages copy was down)")
    run.settle(accepted)


@drill("member-loss", "Member loss under load: kill the queue's owner and one more member while clients POST")
def member_loss(run: DrillRun, after: float = 10.0, threads: int = 4) -> None:
    poster = run.poster(threads=threads, seconds=after + 120.0).start()
    run.note(f"POSTing from {threads} threads")
    run.check(poster.wait_accepted(20, timeout=30), "the POSTs did not get going")
    owner = queue_owner(run.system)
    run.note(f"{owner} owns the partition of {QUEUE_NAME}")
    other = next(m for m in run.system.names("member") if m != owner)
    killed_at = run.kill(owner, other)
    time.sleep(after)  # the load goes on through the failover
    poster.stop()
    accepted = run.record_load(poster)
    run.note(f"load stopped: {len(poster.outcomes)} POSTs, {len(accepted)} answered 201")
    failures = poster.failures
    slowest_failure = max((o.elapsed for o in failures), default=0.0)
    run.figure("slowest failed POST (s)", f"{slowest_failure:.1f}")
    run.figure("slowest POST answered 201 (s)", f"{max((o.elapsed for o in poster.outcomes if o.uuid), default=0):.1f}")
    not_503 = [o for o in failures if o.status != 503]
    run.check(not not_503, f"{len(not_503)} failed POSTs were not a 503: {failure_summary(not_503)}")
    run.check(slowest_failure <= FAIL_FAST_SECONDS,
              f"a failed POST took {slowest_failure:.1f} s (over {FAIL_FAST_SECONDS:.0f} s)")
    first_after = min((o.started + o.elapsed for o in poster.outcomes if o.uuid and o.started >= killed_at),
                      default=None)
    run.check(first_after is not None, "no POST succeeded after the kill")
    run.recovered(None if first_after is None else first_after - killed_at, "kill -> first 201 of a POST sent after")
    run.settle(accepted)


@drill("logging-loss", "Logging copy loss: kill a logging copy (not its member) during continuous POSTs")
def logging_loss(run: DrillRun, victim: str | None = None, after: float = 6.0) -> None:
    copies = run.system.names("logging")
    victim = victim or copies[min(1, len(copies) - 1)]
    poster = run.poster(threads=4, seconds=after + 120.0).start()
    run.note("POSTing from 4 threads")
    run.check(poster.wait_accepted(10, timeout=30), "the POSTs did not get going")
    run.kill(victim)
    time.sleep(after)  # the load goes on without the copy
    row = next(r for r in run.system.status() if r["name"] == victim)
    run.figure(f"launcher status of {victim}", "running" if row["running"] else f"down ({row['detail']})")
    run.check(not row["running"] and not row["healthy"], f"the launcher's status shows {victim} as {row}")
    poster.stop()
    accepted = run.record_load(poster)
    run.check(not poster.failures, f"POSTs failed while {victim} was down: {failure_summary(poster.failures)}")
    started = time.time()
    back_at = run.start(victim)
    run.recovered(back_at - started, f"start -> {victim} healthy; POSTs never stopped")
    run.settle(accepted)


@drill("config-loss", "Config server loss: kill it, the facade keeps working from its cache and picks it up again")
def config_loss(run: DrillRun, outage: float = 8.0) -> None:
    servers = run.system.names("config-server")
    if not servers:
        raise DrillError("this deployment has no config server (Consul discovery?)")
    server = servers[0]
    poster = run.poster(threads=2, seconds=outage + 120.0).start()
    run.note("POSTing from 2 threads")
    run.check(poster.wait_accepted(5, timeout=30), "the POSTs did not get going")
    run.kill(server)
    time.sleep(outage)  # longer than the facade's cache TTL: its lookups fail and it serves cached addresses

    def discovery(body: dict) -> dict:
        return body["checks"]["discovery"]["detail"]

    _, body = run.facade_health()
    run.figure("facade's registry while the server is down", "reachable" if discovery(body)["reachable"]
               else f"served from cache ({discovery(body).get('error')})")
    run.check(not discovery(body)["reachable"], "the facade did not notice the config server was gone")
    during = len(poster.accepted)
    restarted_at = time.time()
    run.start(server)
    _, seconds = wait_for(lambda: discovery(run.facade_health()[1]), lambda d: d["reachable"], 30)
    run.check(seconds is not None, "the facade did not pick the registry up again within 30 s")
    if seconds is not None:
        back_at = run.note(f"the facade reads the registry from {server} again")
        run.recovered(back_at - restarted_at, f"{server} started -> the facade reads it again")
    poster.stop()
    accepted = run.record_load(poster)
    run.figure("POSTs answered 201 before the server came back", during)
    run.check(not poster.failures, f"POSTs failed without the config server: {failure_summary(poster.failures)}")
    run.note(f"load stopped: {len(accepted)} answered 201")
    run.settle(accepted)


@drill("cluster-loss", "Whole cluster loss: kill every member; services answer 503 fast and recover by themselves")
def cluster_loss(run: DrillRun, count: int = 20, probes: int = 5, outage: float = 5.0) -> None:
    gone_with_cluster = run.post(count)
    services = {r["name"]: r["pid"] for r in run.system.status() if r["kind"] != "member"}
    members = run.system.names("member")
    killed_at = run.kill(*members)
    _, seconds = wait_for(lambda: run.facade_health()[0], lambda status: status == 503, 30)
    run.figure("facade /health answers 503 after (s)", "never" if seconds is None else f"{seconds:.1f}")
    run.check(seconds is not None, "facade /health did not turn 503 within 30 s")
    clients = [n for kind in ("logging", "messages", "facade") for n in run.system.names(kind)]
    _, seconds = wait_for(lambda: [run.system.health(n)[0] for n in clients], lambda ok: not any(ok), 30)
    run.check(seconds is not None, "not every logging/messages copy reported the cluster gone within 30 s")
    with requests.Session() as session:
        outcomes = [post_message(session, run.facade, f"{run.tag}down-{i}") for i in range(1, probes + 1)]
    slowest = max(o.elapsed for o in outcomes)
    run.figure("POSTs without a cluster", failure_summary(outcomes))
    run.figure("slowest POST without a cluster (s)", f"{slowest:.2f}")
    run.check(all(o.status == 503 for o in outcomes), f"POSTs without a cluster: {failure_summary(outcomes)}")
    run.check(slowest <= FAIL_FAST_SECONDS, f"a POST without a cluster took {slowest:.1f} s")
    time.sleep(max(0.0, killed_at + outage - time.time()))  # a while without a cluster: nothing may crash
    crashed = [r["name"] for r in run.system.status() if r["name"] in services and not r["running"]]
    run.check(not crashed, f"crashed without the cluster: {', '.join(crashed)}")
    run.note(f"{int(time.time() - killed_at)} s without a cluster: every service still running")
    restarted_at = time.time()
    run.start(*members)
    _, seconds = wait_for(lambda: [run.system.health(n)[0] for n in services], all, 90, interval=0.5)
    run.check(seconds is not None, "the services did not recover within 90 s of the members' restart")
    run.recovered(None if seconds is None else time.time() - restarted_at, "members started -> every service healthy")
    if seconds is not None:
        run.note("every service healthy again, none restarted")
    now = {r["name"]: r["pid"] for r in run.system.status() if r["name"] in services}
    run.check(now == services, f"services were restarted: before {services}, after {now}")
    accepted = run.post(count, tag=run.tag + "after-")
    run.figure("posted before the loss, readable after (outside the promise)",
               f"{readable_through_facade(run.facade, gone_with_cluster)}/{len(gone_with_cluster)}")
    run.report.posted -= len(gone_with_cluster)  # no member was left for them: the promise does not cover them
    run.settle(accepted)


@drill("rejoin", "Rejoin and kill again: kill a member, POST more, restart it, wait until safe, "
                 "kill the other two")
def rejoin(run: DrillRun, count: int = 100) -> None:
    first, *others = run.system.names("member")
    accepted = run.post(count, tag=run.tag + "a-")
    run.wait_consumed(accepted)
    run.kill(first)
    run.wait_readable(accepted, f"after killing {first}")
    accepted |= run.post(count, tag=run.tag + "b-")  # these reach the rejoined member only by re-replication
    run.wait_consumed(accepted)
    run.start(first)
    began = time.monotonic()
    run.system.wait_cluster_safe(len(others) + 1, timeout=120)
    safe_after = time.monotonic() - began
    run.note(f"cluster of {len(others) + 1} safe again {safe_after:.1f} s after {first} was healthy")
    run.recovered(safe_after, f"{first} healthy -> cluster safe")
    run.kill(*others)
    run.wait_readable(accepted, f"with only the rejoined {first} left")
    run.settle(accepted)

