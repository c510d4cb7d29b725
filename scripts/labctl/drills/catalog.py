"""The drills: each kills what it names, checks the outcome and leaves the report to the framework."""

from __future__ import annotations

import time

from labctl.drills.delivery import readable_through_facade
from labctl.drills.framework import DrillError, DrillRun, drill
from labctl.drills.kafka_view import group_before, wait_rejoined
from labctl.drills.readings import (
    FAIL_FAST_SECONDS,
    QUEUE_NAME,
    answered_between,
    longest_silence,
    queue_owner,
    received_in_cluster,
)
from labctl.load import PostClient, failure_summary
from labctl.probe import wait_for


def hold_frozen(run: DrillRun, poster, victim: str, frozen: float, after: float) -> tuple[float, float]:
    """Freeze `victim` for `frozen` seconds while the poster goes on, thaw it, let the load run `after`
    seconds more, stop it; answers when it was frozen and thawed."""
    frozen_at = run.freeze(victim)
    time.sleep(frozen)
    thawed_at = run.thaw(victim)
    time.sleep(after)
    poster.stop()
    return frozen_at, thawed_at


@drill("map-lab", "Map, the lab way: POST msg1..msg10, kill a logging copy with its member, read; "
                  "kill a second pair, read")
def map_lab(run: DrillRun, count: int = 10) -> None:
    accepted = run.post(count, threads=1, tag="msg")
    run.wait_readable(accepted, "before any kill")
    run.wait_consumed(accepted)
    slowest = 0.0
    for copy in run.controller.names("logging")[:2]:
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
    victims = run.controller.names("member")[:2]
    run.kill(*victims)
    run.recovered(run.wait_readable(accepted, f"after killing {' + '.join(victims)}"), "kill -> all readable")
    run.settle(accepted)


@drill("queue-lab", "Queue, the lab way: stop both messages copies, POST 100, kill the queue's owner, "
                    "start the copies at different times")
def queue_lab(run: DrillRun, count: int = 100, stagger: float = 3.0) -> None:
    consumers = run.controller.names("messages")
    run.stop(*consumers)
    accepted = run.post(count)
    owner = queue_owner(run.controller)
    run.note(f"{owner} owns the partition of {QUEUE_NAME}")
    killed_at = run.kill(owner)
    first, *rest = consumers
    run.start(first)
    # the second copy starts once the first has taken something (or after `stagger` seconds)
    wait_for(lambda: run.read(accepted, facade=False).per_copy.get(first, 0), lambda n: n > 0, stagger)
    if rest:
        run.start(*rest)
    done_at = run.settle(accepted)
    run.recovered(None if done_at is None else done_at - killed_at, "kill -> all received, copies restarted between")


@drill("consumer-crash", "Consumer crash: kill a messages copy while 1,000 POSTs are consumed, restart it "
                         "(both queue modes)")
def consumer_crash(run: DrillRun, count: int = 1000, victim: str | None = None) -> None:
    victim = victim or run.controller.names("messages")[0]
    kafka = group_before(run)  # Kafka mode: the group moves its partitions, and gives it one back
    poster = run.poster(threads=8, count=count, seconds=count + 60.0).start()
    run.note(f"streaming {count} POSTs")
    run.check(poster.wait_accepted(count * 3 // 10, timeout=60), "the stream of POSTs did not get going")
    run.note(f"{len(poster.accepted)} answered 201 so far")
    killed_at = run.kill(victim)
    back_at = run.start(victim)
    run.recovered(back_at - killed_at, f"kill -> {victim} healthy again")
    if kafka:
        wait_rejoined(run, victim)
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
    owner = queue_owner(run.controller)
    run.note(f"{owner} owns the partition of {QUEUE_NAME}")
    other = next(m for m in run.controller.names("member") if m != owner)
    killed_at = run.kill(owner, other)
    time.sleep(after)  # the load goes on through the failover
    poster.stop()
    accepted = run.record_load(poster)
    run.note(f"load stopped: {len(poster.outcomes)} POSTs, {len(accepted)} answered 201")
    run.judge_failures_fast(poster.failures, FAIL_FAST_SECONDS)
    run.figure("slowest POST answered 201 (s)", f"{max((o.elapsed for o in poster.outcomes if o.uuid), default=0):.1f}")
    first_after = min((o.started + o.elapsed for o in poster.outcomes if o.uuid and o.started >= killed_at),
                      default=None)
    run.check(first_after is not None, "no POST succeeded after the kill")
    run.recovered(None if first_after is None else first_after - killed_at, "kill -> first 201 of a POST sent after")
    run.settle(accepted)


@drill("logging-loss", "Logging copy loss: kill a logging copy (not its member) during continuous POSTs")
def logging_loss(run: DrillRun, victim: str | None = None, after: float = 6.0) -> None:
    copies = run.controller.names("logging")
    victim = victim or copies[min(1, len(copies) - 1)]
    poster = run.poster(threads=4, seconds=after + 120.0).start()
    run.note("POSTing from 4 threads")
    run.check(poster.wait_accepted(10, timeout=30), "the POSTs did not get going")
    run.kill(victim)
    time.sleep(after)  # the load goes on without the copy
    row = next(r for r in run.controller.status() if r["name"] == victim)
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
    servers = run.controller.names("config-server")
    if not servers:
        raise DrillError("this deployment has no config server (Consul discovery?)")
    server = servers[0]
    poster = run.poster(threads=2, seconds=outage + 120.0).start()
    run.note("POSTing from 2 threads")
    run.check(poster.wait_accepted(5, timeout=30), "the POSTs did not get going")
    run.kill(server)
    time.sleep(outage)  # longer than the facade's cache TTL: its lookups fail and it serves cached addresses

    health = run.facade_health()
    run.figure("facade's registry while the server is down", "reachable" if health.registry_reachable()
               else f"served from cache ({health.registry_error()})")
    run.check(not health.registry_reachable(), "the facade did not notice the config server was gone")
    during = len(poster.accepted)
    restarted_at = time.time()
    run.start(server)
    _, seconds = wait_for(lambda: run.facade_health().registry_reachable(), bool, 30)
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
    services = {r["name"]: r["pid"] for r in run.controller.status() if r["kind"] != "member"}
    members = run.controller.names("member")
    killed_at = run.kill(*members)
    _, seconds = wait_for(lambda: run.facade_health().status, lambda status: status == 503, 30)
    run.figure("facade /health answers 503 after (s)", "never" if seconds is None else f"{seconds:.1f}")
    run.check(seconds is not None, "facade /health did not turn 503 within 30 s")
    clients = [n for kind in ("logging", "messages", "facade") for n in run.controller.names(kind)]
    _, seconds = wait_for(lambda: [run.controller.health(n)[0] for n in clients], lambda ok: not any(ok), 30)
    run.check(seconds is not None, "not every logging/messages copy reported the cluster gone within 30 s")
    with PostClient(run.facade + "/facade") as client:
        outcomes = [client.post(f"{run.tag}down-{i}") for i in range(1, probes + 1)]
    slowest = max(o.elapsed for o in outcomes)
    run.figure("POSTs without a cluster", failure_summary(outcomes))
    run.note(f"{probes} POSTs without a cluster are outside the promise (no member to log them): the check at "
             "the end does not look for them")
    run.figure("slowest POST without a cluster (s)", f"{slowest:.2f}")
    run.check(all(o.status == 503 for o in outcomes), f"POSTs without a cluster: {failure_summary(outcomes)}")
    run.check(slowest <= FAIL_FAST_SECONDS, f"a POST without a cluster took {slowest:.1f} s")
    time.sleep(max(0.0, killed_at + outage - time.time()))  # a while without a cluster: nothing may crash
    crashed = [r["name"] for r in run.controller.status() if r["name"] in services and not r["running"]]
    run.check(not crashed, f"crashed without the cluster: {', '.join(crashed)}")
    run.note(f"{int(time.time() - killed_at)} s without a cluster: every service still running")
    restarted_at = time.time()
    run.start(*members)
    _, seconds = wait_for(lambda: [run.controller.health(n)[0] for n in services], all, 90, interval=0.5)
    run.check(seconds is not None, "the services did not recover within 90 s of the members' restart")
    run.recovered(None if seconds is None else time.time() - restarted_at, "members started -> every service healthy")
    if seconds is not None:
        run.note("every service healthy again, none restarted")
    now = {r["name"]: r["pid"] for r in run.controller.status() if r["name"] in services}
    run.check(now == services, f"services were restarted: before {services}, after {now}")
    run.recount()  # the received map went with the cluster: each copy's counts are compared from here
    accepted = run.post(count, tag=run.tag + "after-")
    run.figure("posted before the loss, readable after (outside the promise)",
               f"{readable_through_facade(run.facade, gone_with_cluster)}/{len(gone_with_cluster)}")
    run.report.posted -= len(gone_with_cluster)  # no member was left for them: the promise does not cover them
    run.settle(accepted)


@drill("rejoin", "Rejoin and kill again: kill a member, POST more, restart it, wait until safe, "
                 "kill the other two")
def rejoin(run: DrillRun, count: int = 100) -> None:
    first, *others = run.controller.names("member")
    accepted = run.post(count, tag=run.tag + "a-")
    run.wait_consumed(accepted)
    run.kill(first)
    run.wait_readable(accepted, f"after killing {first}")
    accepted |= run.post(count, tag=run.tag + "b-")  # these reach the rejoined member only by re-replication
    run.wait_consumed(accepted)
    run.start(first)
    began = time.monotonic()
    run.controller.wait_cluster_safe(len(others) + 1, timeout=120)
    safe_after = time.monotonic() - began
    run.note(f"cluster of {len(others) + 1} safe again {safe_after:.1f} s after {first} was healthy")
    run.recovered(safe_after, f"{first} healthy -> cluster safe")
    run.kill(*others)
    run.wait_readable(accepted, f"with only the rejoined {first} left")
    run.settle(accepted)


@drill("member-freeze", "Member hang: freeze the queue's owner (SIGSTOP) while clients POST, thaw it, "
                        "let it merge back")
def member_freeze(run: DrillRun, frozen: float = 20.0, after: float = 10.0, threads: int = 4,
                  victim: str | None = None) -> None:
    poster = run.poster(threads=threads, seconds=frozen + after + 120.0).start()
    run.note(f"POSTing from {threads} threads")
    run.check(poster.wait_accepted(20, timeout=30), "the POSTs did not get going")
    if victim is None:  # the worst case: every offer waits on it, and every write waits on it as a backup
        victim = queue_owner(run.controller)
        run.note(f"{victim} owns the partition of {QUEUE_NAME}")
    # The thawed member is a cluster of its own for a moment before it merges back: a copy that records a
    # message from its stale queue processes it twice, and the journals fail the drill for it
    # (docs/fault-tolerance.md, "The thaw")
    frozen_at, thawed_at = hold_frozen(run, poster, victim, frozen, after)
    accepted = run.record_load(poster)
    run.note(f"load stopped: {len(poster.outcomes)} POSTs, {len(accepted)} answered 201")
    outcomes = poster.outcomes
    resumed = min((o.started + o.elapsed for o in outcomes if o.uuid and o.started >= frozen_at), default=None)
    silence = longest_silence(outcomes, frozen_at, thawed_at)
    run.figure("longest stretch without a 201 while frozen (s)", f"{silence:.1f}")
    run.figure("POSTs answered 201 while the member was frozen", answered_between(outcomes, frozen_at, thawed_at))
    run.figure("slowest POST answered 201 (s)", f"{max((o.elapsed for o in outcomes if o.uuid), default=0):.1f}")
    not_503 = [o for o in poster.failures if o.status != 503]
    run.check(not not_503, f"{len(not_503)} failed POSTs were not a 503: {failure_summary(not_503)}")
    # A verdict again since the members queue their writes (hazelcast/jvm.options): before, the two live
    # members split in about one run in three once the hung one was dropped, and POSTs waited for the thaw
    # (docs/fault-tolerance.md, "A member that hangs")
    before_thaw = resumed is not None and resumed < thawed_at
    run.figure("POSTs acknowledged again before the thaw", "yes" if before_thaw else "no: only once it was thawed")
    run.check(before_thaw, f"no POST sent after the freeze was answered 201 before {victim} was thawed "
                           "(did the live members split? their logs: 'Suspecting Member')")
    run.recovered(None if resumed is None else resumed - frozen_at, "freeze -> first 201 of a POST sent after")
    began = time.monotonic()
    run.controller.wait_cluster_safe(len(run.controller.names("member")), timeout=120)
    run.note(f"{victim} is back in the cluster and every partition safe, {time.monotonic() - began:.1f} s after")
    run.settle(accepted)


@drill("logging-freeze", "Logging copy hang: freeze a logging copy while clients POST; the facade fails over")
def logging_freeze(run: DrillRun, frozen: float = 10.0, after: float = 5.0, victim: str | None = None) -> None:
    copies = run.controller.names("logging")
    victim = victim or copies[min(1, len(copies) - 1)]
    poster = run.poster(threads=4, seconds=frozen + after + 120.0).start()
    run.note("POSTing from 4 threads")
    run.check(poster.wait_accepted(10, timeout=30), "the POSTs did not get going")
    frozen_at, thawed_at = hold_frozen(run, poster, victim, frozen, after)
    accepted = run.record_load(poster)
    outcomes = poster.outcomes
    run.figure(f"POSTs answered 201 while {victim} was frozen", answered_between(outcomes, frozen_at, thawed_at))
    run.figure("slowest POST answered 201 (s)", f"{max((o.elapsed for o in outcomes if o.uuid), default=0):.1f}")
    run.check(not poster.failures, f"POSTs failed while {victim} hung: {failure_summary(poster.failures)}")
    run.recovered(longest_silence(outcomes, frozen_at, thawed_at), "longest stretch without a 201 while frozen")
    run.settle(accepted)


@drill("messages-freeze", "Messages copy hang: freeze a messages copy while clients POST; the other copy "
                          "takes the queue, and what the frozen one held comes back")
def messages_freeze(run: DrillRun, frozen: float = 30.0, load: float = 5.0, victim: str | None = None) -> None:
    victim = victim or run.controller.names("messages")[0]
    poster = run.poster(threads=4, seconds=load + 120.0).start()
    run.note("POSTing from 4 threads")
    run.check(poster.wait_accepted(10, timeout=30), "the POSTs did not get going")
    frozen_at = run.freeze(victim)
    time.sleep(load)
    poster.stop()
    accepted = run.record_load(poster)
    run.note(f"load stopped: {len(poster.outcomes)} POSTs, {len(accepted)} answered 201")
    run.check(not poster.failures, f"POSTs failed while {victim} hung: {failure_summary(poster.failures)}")
    count, _ = wait_for(lambda: received_in_cluster(run.controller, accepted), lambda n: n == len(accepted),
                        max(1.0, frozen_at + frozen - time.time()), interval=0.5)
    if run.check(count == len(accepted), f"only {count or 0} of {len(accepted)} received while {victim} was "
                                         f"frozen ({frozen:.0f} s): the rest were stuck with it"):
        run.recovered(run.note(f"all {len(accepted)} received while {victim} is still frozen") - frozen_at,
                      "freeze -> every message received (the frozen copy's included)")
    time.sleep(max(0.0, frozen_at + frozen - time.time()))
    run.thaw(victim)
    run.controller.wait_healthy([victim], timeout=60)
    run.note(f"{victim} healthy again")
    run.settle(accepted)


@drill("retry", "Task 1's retry: stop every logging copy, POST, start one while the facade is still retrying: "
                "the POST answers 201 and the message is logged once")
def retry(run: DrillRun, wait: float = 30.0, down: float = 3.0) -> None:
    from concurrent.futures import ThreadPoolExecutor

    copies = run.controller.names("logging")
    run.stop(*copies)
    msg = f"{run.tag}retry"
    with PostClient(run.facade + "/facade", timeout=wait + 30.0) as client, ThreadPoolExecutor(1) as pool:
        run.note(f"POST {msg!r} with Prefer: wait={wait:.0f}, every logging copy down")
        answer = pool.submit(client.post, msg, headers={"Prefer": f"wait={wait:.0f}"})
        time.sleep(down)  # the facade keeps trying while no copy answers
        run.check(not answer.done(), f"the POST was answered within {down:.0f} s with every logging copy down "
                                     f"({failure_summary([answer.result()]) if answer.done() else ''})")
        try:
            breakers = run.facade_health().detail("logging-breakers")["copies"].values()
            run.figure("the facade's logging breakers while every copy was down",
                       ", ".join(f"{b['state']} ({b['failures_in_a_row']} failed in a row)" for b in breakers)
                       or "none: no copy called (Consul names no stopped copy)")
        except (ValueError, KeyError, TypeError):
            run.figure("the facade's logging breakers while every copy was down", "not reported")
        started = time.time()
        run.start(copies[0])
        outcome = answer.result()
    answered = outcome.started + outcome.elapsed
    run.note(f"the POST answered {outcome.status or outcome.error} after {outcome.elapsed:.1f} s", answered)
    run.figure("POST answered", f"{outcome.status or outcome.error} after {outcome.elapsed:.1f} s")
    if not run.check(outcome.uuid is not None, f"the POST was not answered 201: {failure_summary([outcome])}"):
        return
    run.report.posted += 1
    run.recovered(answered - started, f"{copies[0]} started -> the waiting POST answered 201")
    if copies[1:]:
        run.start(*copies[1:])
    run.settle({outcome.uuid: msg})
