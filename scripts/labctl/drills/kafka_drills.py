"""The drills of Kafka mode (`labctl start --queue kafka`, docs/kafka.md): a broker that leads a partition of the
messages topic killed under load (three brokers), and the consumer group's rebalance when a messages copy dies
and comes back. consumer-crash (scripts/labctl/drills/catalog.py) runs in both queue modes."""

from __future__ import annotations

import time

from labctl.drills.framework import DrillError, DrillRun, drill
from labctl.drills.kafka_view import (
    KafkaUnreadable,
    TopicView,
    describe,
    each_owned_once,
    owned,
    read_split,
    read_topic,
    require_kafka,
)
from labctl.drills.readings import FAIL_FAST_SECONDS, answered_between, longest_silence, received_in_cluster
from labctl.load import failure_summary
from labctl.probe import wait_for

BROKERS_NEEDED = 3  # one may die and the topic (3 replicas, 2 in sync required) still takes writes
LEADER_TIMEOUT = 45.0  # for a partition of a killed leader to be led elsewhere (brokers' session: 9 s)
IN_SYNC_TIMEOUT = 60.0  # for a restarted broker to catch up and be in sync on every partition again
TAKEOVER_TIMEOUT = 45.0  # for the group to move a killed copy's partitions (the consumers' session: 10 s)


def topic_now(run: DrillRun, brokers: dict[str, str], timeout: float = 10.0) -> TopicView | None:
    """The topic's metadata from the brokers not down; None if none answered within `timeout`."""
    live = {name: address for name, address in brokers.items() if name not in run.down}

    def probe() -> TopicView | None:
        try:
            return read_topic(live)
        except KafkaUnreadable:
            return None

    view, _ = wait_for(probe, lambda v: v is not None, timeout, interval=0.5)
    return view


@drill("broker-loss", "Broker loss (Kafka, 3 brokers): kill the broker leading a partition of the messages "
                      "topic while clients POST, start it again")
def broker_loss(run: DrillRun, count: int = 1000, threads: int = 4, after: float = 3.0) -> None:
    brokers = require_kafka(run.controller, "broker-loss", BROKERS_NEEDED)
    poster = run.poster(threads=threads, count=count, seconds=LEADER_TIMEOUT + IN_SYNC_TIMEOUT + 60.0).start()
    run.note(f"POSTing from {threads} threads (at most {count})")
    run.check(poster.wait_accepted(min(50, count // 5), timeout=30), "the POSTs did not get going")
    before = topic_now(run, brokers)
    if before is None:
        raise DrillError("no broker answered a metadata request: nothing was killed")
    leader = before.busiest_leader()
    victim, led = before.name(leader), before.led_by(leader)
    if victim not in brokers:
        raise DrillError(f"the leader of partition(s) {led}, broker {leader}, is no broker known here")
    run.note(f"leaders: {before.leaders()}")
    run.figure("broker killed (leading partitions)", f"{victim} ({', '.join(map(str, led))})")
    killed_at = run.kill(victim)
    moved, seconds = wait_for(lambda: topic_now(run, brokers, timeout=2.0),
                              lambda v: v is not None and v.led_elsewhere(led, leader), LEADER_TIMEOUT, interval=0.5)
    moved_at = time.time()
    if run.check(seconds is not None, f"partition(s) {led} had no new leader {LEADER_TIMEOUT:.0f} s after the kill"):
        run.note(f"new leaders: {moved.leaders()}; in sync: {moved.in_sync()}")
        run.figure("kill -> its partitions led by another broker (s)", f"{moved_at - killed_at:.1f}")
    restarted_at = time.time()
    back_at = run.start(victim)  # healthy: it answers a metadata request (its storage is checked first)
    run.figure(f"start -> {victim} answering (s)", f"{back_at - restarted_at:.1f}")
    back, seconds = wait_for(lambda: topic_now(run, brokers, timeout=2.0),
                             lambda v: v is not None and v.in_sync_everywhere(leader), IN_SYNC_TIMEOUT, interval=0.5)
    if run.check(seconds is not None, f"{victim} was not in sync on every partition {IN_SYNC_TIMEOUT:.0f} s "
                                      "after it answered"):
        run.note(f"{victim} in sync on every partition again")
        run.figure(f"{victim} answering -> in the ISR of every partition (s)", f"{time.time() - back_at:.1f}")
    time.sleep(after)  # POSTs with every broker back
    poster.stop()
    accepted = run.record_load(poster)
    outcomes = poster.outcomes
    stopped_at = time.time()
    run.note(f"load stopped: {len(outcomes)} POSTs, {len(accepted)} answered 201")
    run.figure("POSTs answered 201: kill -> new leader", answered_between(outcomes, killed_at, moved_at))
    run.figure(f"POSTs answered 201: new leader -> {victim} answering",
               answered_between(outcomes, moved_at, back_at))
    run.figure(f"POSTs answered 201: {victim} answering -> load stopped",
               answered_between(outcomes, back_at, stopped_at))
    silence = longest_silence(outcomes, killed_at, stopped_at)
    run.figure("longest stretch without a 201 after the kill (s)", f"{silence:.1f}")
    run.judge_failures_fast(poster.failures, FAIL_FAST_SECONDS)
    first_after = min((o.started + o.elapsed for o in outcomes if o.uuid and o.started >= killed_at), default=None)
    run.check(first_after is not None, "no POST sent after the kill was answered 201")
    run.recovered(None if first_after is None else first_after - killed_at, "kill -> first 201 of a POST sent after")
    run.settle(accepted)


@drill("rebalance", "Rebalance (Kafka): kill a messages copy under load; the other copy takes its partitions "
                    "and consumes everything; start it again: it gets a partition back")
def rebalance(run: DrillRun, count: int = 600, threads: int = 4, after: int = 100, victim: str | None = None) -> None:
    brokers = require_kafka(run.controller, "rebalance")
    copies = run.controller.names("messages")
    if len(copies) < 2:
        raise DrillError(f"rebalance needs two messages copies; this system runs {len(copies)}")
    view = topic_now(run, brokers)
    if view is None:
        raise DrillError("no broker answered a metadata request: nothing was killed")
    partitions = sorted(view.partitions)
    before, seconds = wait_for(lambda: read_split(run.controller),
                               lambda s: each_owned_once(s, partitions, copies) and all(s.get(c) for c in copies),
                               TAKEOVER_TIMEOUT, interval=0.5)
    run.figure("partitions before", describe(before or {}))
    if seconds is None:
        raise DrillError(f"the group did not give each copy a partition: {describe(before or {})}")
    victim = victim or copies[0]
    others = [c for c in copies if c != victim]
    poster = run.poster(threads=threads, count=count, seconds=count + 60.0).start()
    run.note(f"streaming {count} POSTs")
    run.check(poster.wait_accepted(count // 5, timeout=60), "the stream of POSTs did not get going")
    killed_at = run.kill(victim)
    taken, seconds = wait_for(lambda: read_split(run.controller, skip=run.down),
                              lambda s: each_owned_once(s, partitions, others), TAKEOVER_TIMEOUT, interval=0.5)
    run.figure(f"partitions with {victim} down", describe(taken or {}))
    if run.check(seconds is not None, f"{', '.join(others)} did not own {victim}'s partitions "
                                      f"{TAKEOVER_TIMEOUT:.0f} s after the kill"):
        run.note(f"{', '.join(others)} own(s) every partition")
        run.figure(f"kill -> {victim}'s partitions owned by {', '.join(others)} (s)", f"{time.time() - killed_at:.1f}")
    poster.join()
    accepted = run.record_load(poster)
    run.check(len(accepted) == count, f"{count - len(accepted)} POSTs failed (only a messages copy was down): "
                                      f"{failure_summary(poster.failures)}")
    received, seconds = wait_for(lambda: received_in_cluster(run.controller, accepted), lambda n: n == len(accepted),
                                 TAKEOVER_TIMEOUT, interval=0.5)
    run.figure(f"received with {victim} down", f"{received or 0}/{len(accepted)}")
    if run.check(seconds is not None, f"only {received or 0} of {len(accepted)} received while {victim} was down"):
        run.recovered(run.note(f"all {len(accepted)} received with {victim} down") - killed_at,
                      "kill -> every message received by the other copy")
    restarted_at = time.time()
    run.start(victim)
    back, seconds = wait_for(lambda: read_split(run.controller),
                             lambda s: each_owned_once(s, partitions, copies) and bool(owned(s, [victim])),
                             TAKEOVER_TIMEOUT, interval=0.5)
    run.figure(f"partitions after {victim} started again", describe(back or {}))
    if run.check(seconds is not None, f"{victim} got no partition back {TAKEOVER_TIMEOUT:.0f} s after its start"):
        run.figure(f"start -> {victim} owns a partition (s)", f"{time.time() - restarted_at:.1f}")
    more = run.post(after, tag=run.tag + "after-")
    took, _ = wait_for(lambda: run.read(more, facade=False).per_copy.get(victim, 0), lambda n: n > 0, 30, interval=0.5)
    run.figure(f"of {after} POSTed after the restart, received by {victim}", took or 0)
    run.check(bool(took), f"{victim} received none of the {after} POSTed after its restart")
    run.settle(accepted | more)
