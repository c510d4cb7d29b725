"""The network drills (a system started with --hosts; docs/network-faults.md): partitions that cut a host, the
queue owner's host or the link between two hosts for a while, then heal; a slow link and a lossy one. Each runs
under the drills' load and reports the longest stretch without a 201, the failed POSTs, and after the heal what
was lost, processed twice and merged, and how long until POSTs came at the rate they had before the fault."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from labctl.control import Controller
from labctl.drills.delivery import read_tallies
from labctl.drills.framework import DrillError, DrillRun, drill
from labctl.drills.readings import (
    FAIL_FAST_SECONDS,
    QUEUE_NAME,
    answered_between,
    longest_silence,
    master,
    queue_owner,
)
from labctl.load import Outcome, Poster
from labctl.netfaults.control import NetFaults
from labctl.netfaults.rules import NetUsageError
from labctl.probe import member_health, wait_for

RATE_WINDOW = 3.0  # seconds over which the rate after a heal is compared with the rate before the fault
FULL_RATE_SHARE = 0.8  # "full rate": at least this share of the rate before the fault
BASELINE = 8.0  # seconds of load before the fault, the run's own unfaulted level
AFTER_LINK = 10.0  # seconds of load after a slow or lossy link is whole again
# for the cluster to be whole and safe again after a heal: a healed member has been seen to sit in its merge for
# ~121 s while the two others split from each other (docs/fault-tolerance.md, "Network partitions and slow links")
SAFE_TIMEOUT = 300.0
MERGED = "merged entries (received-map records written over at the heal)"
LOST_OUTSIDE = "acknowledged lost outside the fault (before it, or once the cluster was whole and safe)"
READABLE_TIMEOUT = 180.0  # for every reader to answer a full listing again after a heal
SPLIT_POLL = 0.25  # seconds between two looks at a member's cluster size during a cut (and each look's timeout)


def net_faults(controller: Controller) -> NetFaults:
    """The faults of the launcher's system with hosts; a drill on anything else stops before touching it."""
    from labctl.launcher import System

    if not isinstance(controller, System):
        raise DrillError("network drills need the launcher's system started with --hosts (not Docker Compose)")
    try:
        return NetFaults(controller)
    except NetUsageError as err:
        raise DrillError(str(err)) from err


def consistency(run: DrillRun) -> str:
    return run.controller.state().topology.consistency


def member_on(run: DrillRun, host: str) -> str:
    """The member that runs on `host`."""
    return next(m for m in run.controller.names("member") if host_of_member(run, m) == host)


def first_split(health_url: str, members: int, until: float) -> float | None:
    """When the member at `health_url` first counted fewer than `members` (its cluster dropped one, or it was
    dropped), polled every SPLIT_POLL seconds until `until`; None if it did not before then."""
    while time.time() < until:
        with contextlib.suppress(requests.RequestException):
            size = member_health(health_url, SPLIT_POLL).cluster_size
            if size is not None and size < members:
                return time.time()
        time.sleep(SPLIT_POLL)
    return None


def host_of_member(run: DrillRun, member: str) -> str:
    topology = run.controller.state().topology
    return topology.host_of("member", int(member.rsplit("-", 1)[1]))


@contextmanager
def faulted(run: DrillRun, net: NetFaults, what: str, apply: Callable[[], object]) -> Iterator[float]:
    """Apply a fault (answers when), and whatever happens heal every fault afterwards."""
    try:
        apply()
        yield run.note(what)
    finally:
        net.heal()
        run.note("healed: every cut, delay and loss removed")


@contextmanager
def stopped_at_the_end(poster: Poster) -> Iterator[None]:
    """The load stops if the drill cannot go on (a cluster that will not be whole again, say)."""
    try:
        yield
    except BaseException:
        poster.stop()
        raise


def wait_readable_again(run: DrillRun, healed_at: float) -> None:
    """Until every logging and messages copy and the facade answer a full listing (a cluster that calls itself
    whole and safe may still leave map-wide reads unanswered for a while after a heal); a figure either way."""
    delivery, seconds = wait_for(lambda: run.read(()), lambda d: not d.unreadable and d.facade.asked is not None,
                                 READABLE_TIMEOUT, interval=1.0)
    if run.check(seconds is not None, f"{', '.join(delivery.unreadable if delivery else ['every reader'])} "
                                      f"still unreadable {READABLE_TIMEOUT:.0f} s after the load stopped"):
        run.figure("heal -> every copy and the facade answer a full listing (s)", f"{time.time() - healed_at:.1f}")


def written_over(run: DrillRun) -> int | None:
    """The received map's entries the heal's merge changed, as the copies' own counts show them: a copy that
    recorded more than the map credits it with had records written over with the other side's record of the
    same message. None when a copy's counts cannot be compared. (What was processed twice in all, the copies'
    journals tell: the framework reads them once the drill is done.)"""
    copies = [c for c in run.controller.names("messages") if c not in run.uncounted]
    now = read_tallies(run.controller)
    if any(c not in now or c not in run.tallies for c in copies):
        return None
    return sum(max(0, (now[c] - run.tallies[c]).counts.received - (now[c] - run.tallies[c]).listed) for c in copies)


def settle_and_count(run: DrillRun, accepted: dict[str, str], *, fault: tuple[float, float] | None = None) -> None:
    """The framework's check of every reader (it fails the drill on a loss or a record written over), then the
    figures a network drill reports after the heal. With `fault` (from the cut until the cluster was whole and
    safe again), the acknowledged messages lost are also counted by when they were answered: a side cut off in
    available mode takes writes that the heal's merge may drop, which the promise allows for that mode; a loss
    of one answered before the cut or after the cluster was whole again it never allows."""
    run.settle(accepted)
    merged = written_over(run)
    run.figure("acknowledged lost", len(run.report.lost))
    if fault is not None:
        answered = {o.uuid: o.started + o.elapsed for o in run.report.outcomes if o.uuid}
        lost = [entry.rsplit(":", 1)[1] for entry in run.report.lost]
        outside = [u for u in lost if u in answered and not fault[0] <= answered[u] <= fault[1]]
        run.figure(LOST_OUTSIDE, len(outside))
        run.check(not outside, f"{len(outside)} acknowledged outside the fault lost")
    run.figure(MERGED, "not compared" if merged is None else merged)


def rate(outcomes: list[Outcome], start: float, end: float) -> float:
    return answered_between(outcomes, start, end) / max(end - start, 1e-9)


def latency_ms(outcomes: list[Outcome], start: float, end: float, q: int) -> str:
    """The q-th percentile of the 201s answered within [start, end], in ms."""
    times = [o.elapsed * 1000 for o in outcomes if o.uuid and start <= o.started + o.elapsed <= end]
    if len(times) < 2:
        return "-"
    return f"{statistics.quantiles(times, n=100)[q - 1]:.0f}"


def time_to_full_rate(outcomes: list[Outcome], healed_at: float, end: float, baseline: float) -> float | None:
    """Seconds from the heal until the first window of RATE_WINDOW seconds with at least FULL_RATE_SHARE of the
    rate before the fault (None if none before the load stopped)."""
    t = healed_at
    while t + RATE_WINDOW <= end:
        if rate(outcomes, t, t + RATE_WINDOW) >= FULL_RATE_SHARE * baseline:
            return t - healed_at
        t += 0.5
    return None


def under_load(run: DrillRun, threads: int, seconds: float) -> tuple[Poster, float]:
    """A load of `threads` POSTing threads, run BASELINE seconds unfaulted; answers it and its rate then."""
    poster = run.poster(threads=threads, seconds=seconds + BASELINE + 180.0).start()
    run.note(f"POSTing from {threads} threads")
    run.check(poster.wait_accepted(20, timeout=30), "the POSTs did not get going")
    began = time.time()
    time.sleep(BASELINE)
    baseline = rate(poster.outcomes, began, time.time())
    run.figure("POSTs/s answered 201 before the fault", f"{baseline:.1f}")
    return poster, baseline


def account(run: DrillRun, poster: Poster, baseline: float, faulted_at: float, healed_at: float) -> dict[str, str]:
    """The load's figures around the fault; answers what was accepted."""
    stopped_at = time.time()
    poster.stop()
    accepted = run.record_load(poster)
    outcomes = poster.outcomes
    run.note(f"load stopped: {len(outcomes)} POSTs, {len(accepted)} answered 201")
    run.figure("longest stretch without a 201, fault -> load stopped (s)",
               f"{longest_silence(outcomes, faulted_at, stopped_at):.1f}")
    run.figure("POSTs/s answered 201 during the fault", f"{rate(outcomes, faulted_at, healed_at):.1f}")
    run.figure("POSTs/s answered 201 from the heal on", f"{rate(outcomes, healed_at, stopped_at):.1f}")
    run.figure("POSTs answered 503", sum(1 for o in poster.failures if o.status == 503))
    run.figure("POST latency p50 / p99 before, during the fault (ms)",
               f"{latency_ms(outcomes, faulted_at - BASELINE, faulted_at, 50)} / "
               f"{latency_ms(outcomes, faulted_at - BASELINE, faulted_at, 99)}, "
               f"{latency_ms(outcomes, faulted_at, healed_at, 50)} / {latency_ms(outcomes, faulted_at, healed_at, 99)}")
    run.judge_failures_fast(poster.failures, FAIL_FAST_SECONDS)
    full = time_to_full_rate(outcomes, healed_at, stopped_at, baseline)
    run.figure("heal -> full rate again (s)", "not within the load" if full is None else f"{full:.1f}")
    run.recovered(full, f"heal -> {RATE_WINDOW:.0f} s at {FULL_RATE_SHARE:.0%} of the rate before the fault")
    return accepted


def partition_drill(run: DrillRun, sides: tuple[tuple[str, ...], tuple[str, ...]], cut: float, after: float,
                    threads: int) -> None:
    """Cut `sides` apart under load for `cut` seconds, heal, wait until the cluster is whole and safe, load
    `after` seconds more, then check everything the drill was answered 201 for."""
    net = net_faults(run.controller)
    members = len(run.controller.names("member"))
    run.figure("consistency", consistency(run))
    run.figure("partition", f"{','.join(sides[0])} | {','.join(sides[1])}")
    leader = master(run.controller)
    run.figure("master at the cut", f"{leader} ({host_of_member(run, leader)})" if leader.startswith("member-")
               else leader)
    # Each copy's own count against what the received map credits it with: a record the heal's merge writes
    # over is a message two copies processed (one on each side); the drill reports it, and fails on it.
    watched = member_on(run, sides[1][0])
    poster, baseline = under_load(run, threads, cut + after)
    with stopped_at_the_end(poster), faulted(run, net, f"partition {' | '.join(','.join(s) for s in sides)}",
                                             lambda: net.partition(sides)) as cut_at:
        split_at = first_split(run.controller.process(watched).health_url, members, until=cut_at + cut)
        if split_at is not None:
            run.note(f"{watched} sees fewer than {members} members: the cluster dropped one", split_at)
        time.sleep(max(0.0, cut_at + cut - time.time()))
    run.figure(f"cut -> {watched} sees a member dropped (s)",
               "not during the cut" if split_at is None else f"{split_at - cut_at:.1f}")
    healed_at = time.time()
    with stopped_at_the_end(poster):
        began = time.monotonic()
        run.controller.wait_cluster_safe(members, timeout=SAFE_TIMEOUT)
        safe_at = time.time()
        run.figure(f"heal -> {members} members and every partition safe (s)", f"{time.monotonic() - began:.1f}")
        time.sleep(max(0.0, healed_at + after - time.time()))
    accepted = account(run, poster, baseline, cut_at, healed_at)
    wait_readable_again(run, healed_at)
    settle_and_count(run, accepted, fault=(cut_at, safe_at))


def link_drill(run: DrillRun, host: str | None, apply: Callable[[NetFaults, str], object], what: str,
               hold: float, threads: int) -> None:
    net = net_faults(run.controller)
    if host is None:  # the worst case: every offer goes to the queue's owner
        owner = queue_owner(run.controller)
        host = host_of_member(run, owner)
        run.note(f"{owner} owns the partition of {QUEUE_NAME}: slowing its host, {host}")
    run.figure("host", host)
    poster, baseline = under_load(run, threads, hold)
    with stopped_at_the_end(poster), faulted(run, net, f"{what} on {host}", lambda: apply(net, host)) as at:
        time.sleep(hold)
    healed_at = time.time()
    time.sleep(AFTER_LINK)
    accepted = account(run, poster, baseline, at, healed_at)
    settle_and_count(run, accepted)


@drill("partition-minority", "Partition: cut host1 off from the other hosts and the edge for 30 s under load, "
                             "heal")
def partition_minority(run: DrillRun, cut: float = 30.0, after: float = 30.0, threads: int = 4,
                       host: str = "host1") -> None:
    others = tuple(h for h in net_faults(run.controller).net.names if h != host)
    partition_drill(run, ((host,), others), cut, after, threads)


@drill("partition-queue-owner", "Partition: cut off the host whose member owns the queue for 30 s under load, "
                                "heal")
def partition_queue_owner(run: DrillRun, cut: float = 30.0, after: float = 30.0, threads: int = 4) -> None:
    names = net_faults(run.controller).net.names
    owner = queue_owner(run.controller)
    host = host_of_member(run, owner)
    run.note(f"{owner} owns the partition of {QUEUE_NAME}: cutting off {host}")
    partition_drill(run, ((host,), tuple(h for h in names if h != host)), cut, after, threads)


@drill("partition-bridge", "Partition: host1 and host3 cannot see each other, host2 sees both, for 30 s under "
                           "load, heal")
def partition_bridge(run: DrillRun, cut: float = 30.0, after: float = 30.0, threads: int = 4) -> None:
    partition_drill(run, (("host1",), ("host3",)), cut, after, threads)


@drill("slow-link", "Slow link: 100 ms ± 20 ms on everything the queue owner's host sends, 20 s under load")
def slow_link(run: DrillRun, delay_ms: float = 100.0, jitter_ms: float = 20.0, hold: float = 20.0,
              threads: int = 4, host: str | None = None) -> None:
    link_drill(run, host, lambda net, h: net.delay(h, delay_ms, jitter_ms),
               f"delay {delay_ms:g} ms ± {jitter_ms:g} ms", hold, threads)


@drill("flaky-link", "Flaky link: 10% of the packets the queue owner's host sends dropped, 20 s under load")
def flaky_link(run: DrillRun, percent: float = 10.0, hold: float = 20.0, threads: int = 4,
               host: str | None = None) -> None:
    link_drill(run, host, lambda net, h: net.loss(h, percent), f"loss {percent:g}%", hold, threads)
