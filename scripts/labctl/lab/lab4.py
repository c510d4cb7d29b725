"""Lab 4: a queue between the facade and two messages copies (Hazelcast's queue; `--kafka`: a Kafka topic).
Who logged and who received what, then the queue's drill: copies stopped, messages posted, the queue's
member (or the broker) killed, the copies started at different times: every message received once."""

from __future__ import annotations

import time

from labctl.lab import actions
from labctl.lab.framework import Lab, Result, Step, Table
from labctl.lab.runner import LabRun
from labctl.launcher import Topology
from labctl.probe import wait_for

QUEUED = 20  # messages posted while no copy consumes
BROKER_DOWN = 2.0  # seconds the Kafka broker stays killed


def _lab_messages(run: LabRun, prefix: str) -> dict[str, str]:
    return {u: m for u, m in run.posted.items() if m.startswith(prefix)}


def copies_empty(run: LabRun) -> Result:
    """GET /messages on both copies before anything was posted: both empty."""
    rows = []
    for copy in run.system.names("messages"):
        body = run.get_json(run.url(copy) + "/messages")
        rows.append((copy, run.url(copy), body.get("count")))
    run.expect(all(r[2] == 0 for r in rows), "expect.copies_empty", ", ".join(f"{r[0]}: {r[2]}" for r in rows))
    return Result(Table((run.t("col.copy"), run.t("col.address"), run.t("col.count")), rows), {"copies": len(rows)})


def post_ten(run: LabRun) -> Result:
    return actions.post_messages(run, [f"msg{i}" for i in range(1, 11)])


def logged(run: LabRun) -> Result:
    return actions.logged_by_copy(run, _lab_messages(run, "msg"))


def received(run: LabRun) -> Result:
    return actions.received_by_copy(run, _lab_messages(run, "msg"))


def read_merged(run: LabRun) -> Result:
    return actions.read_through_facade(run, _lab_messages(run, "msg"), times=3)


def stop_copies(run: LabRun) -> Result:
    copies = run.system.names("messages")
    run.stop(*copies)
    rows = [(copy, run.t("word.running") if run.running(copy) else run.t("word.stopped")) for copy in copies]
    still = [copy for copy in copies if run.running(copy)]
    run.expect(not still, "expect.stopped", ", ".join(still))
    return Result(Table((run.t("col.copy"), run.t("col.state")), rows), {"copies": " + ".join(copies)})


def _queue(run: LabRun) -> dict:
    return run.status_page()["queue"]


def post_queued(run: LabRun) -> Result:
    result = actions.post_messages(run, [f"q{i}" for i in range(1, QUEUED + 1)])
    waiting = len(_lab_messages(run, "q"))
    queue, _ = wait_for(lambda: _queue(run), lambda q: q["size"] == waiting and q["owner"], actions.STATS_WAIT, 0.5)
    queue = queue or {}
    owner = run.member_name(queue.get("owner"))
    run.expect(queue.get("size") == waiting and owner is not None, "expect.queue_holds",
               run.t("seen.queue", size=queue.get("size"), owner=queue.get("owner")), count=waiting)
    run.memo["owner"] = owner
    return Result(result.table, {"count": waiting, "owner": owner, "queue": queue.get("name")})


def kill_owner_command(run: LabRun) -> str:
    return run.labctl(f"kill {run.memo['owner']}")


def kill_owner(run: LabRun) -> Result:
    owner = str(run.memo["owner"])
    run.kill(owner)
    waiting = len(_lab_messages(run, "q"))

    def moved(queue: dict) -> bool:
        return bool(queue["owner"]) and run.member_name(queue["owner"]) != owner and (queue["size"] or 0) >= waiting

    queue, seconds = wait_for(lambda: _queue(run), moved, actions.SETTLE, 0.5)
    queue = queue or {}
    new_owner = run.member_name(queue.get("owner"))
    run.expect(seconds is not None, "expect.queue_moved", run.t("seen.queue", size=queue.get("size"),
                                                                 owner=queue.get("owner")), owner=owner, count=waiting)
    members = [(run.member_name(m["address"]), run.t("word.up") if m["up"] else run.t("word.down"), m["partitions"])
               for m in run.status_page()["members"]]
    table = Table((run.t("col.member"), run.t("col.state"), run.t("col.partitions")), members)
    return Result(table, {"owner": owner, "new_owner": new_owner, "size": queue.get("size"), "count": waiting})


def start_copies(run: LabRun) -> Result:
    first, *rest = run.system.names("messages")
    run.start(first)
    expected = {u: m for u, m in run.posted.items() if not m.startswith("msg")}  # what waited, and the load's
    wait_for(lambda: run.get_json(run.url(first) + "/messages")["count"], lambda n: n > 0, 5.0, 0.2)
    run.start(*rest)
    result = actions.received_by_copy(run, expected)
    return Result(result.table, {**result.facts, "first": first})


def _topic_lag(run: LabRun) -> tuple[int | None, list[str]]:
    """The messages copies' lag summed over the topic's partitions, and each partition's leader."""
    topic = run.status_page().get("topic") or {}
    partitions = topic.get("partitions") or []
    lags = [p.get("lag") for p in partitions]
    total = None if not partitions or any(n is None for n in lags) else sum(lags)
    return total, [str(p.get("leader")) for p in partitions]


def post_queued_kafka(run: LabRun) -> Result:
    result = actions.post_messages(run, [f"q{i}" for i in range(1, QUEUED + 1)])
    waiting = len(_lab_messages(run, "q"))
    found, _ = wait_for(lambda: _topic_lag(run), lambda found: found[0] == waiting, actions.STATS_WAIT, 0.5)
    lag, leaders = found or (None, [])
    run.expect(lag == waiting, "expect.topic_lag", run.t("seen.lag", lag=lag), count=waiting)
    return Result(result.table, {"count": waiting, "leaders": ", ".join(sorted(set(leaders)))})


def kill_broker(run: LabRun) -> Result:
    run.kill("kafka-1")
    time.sleep(BROKER_DOWN)
    run.start("kafka-1")
    waiting = len(_lab_messages(run, "q"))
    found, seconds = wait_for(lambda: _topic_lag(run), lambda found: found[0] is not None and found[0] >= waiting,
                              actions.SETTLE, 0.5)
    lag, leaders = found or (None, [])
    run.expect(seconds is not None, "expect.topic_kept", run.t("seen.lag", lag=lag), count=waiting)
    table = Table((run.t("col.partition"), run.t("col.leader")), list(enumerate(leaders)))
    return Result(table, {"count": waiting, "lag": lag, "down": BROKER_DOWN})


def _steps(queued_step: Step, kill_step: Step) -> tuple[Step, ...]:
    return (
        Step("start", "labctl start", actions.system_table),
        Step("empty", "curl {messages1}/messages; curl {messages2}/messages", copies_empty),
        Step("post", 'for i in $(seq 1 10); do curl -X POST -d "msg=msg$i" {facade}/facade; done', post_ten,
             screenshot=True),
        Step("logged", "curl {logging1}/logging", logged),
        Step("received", "curl {messages1}/messages; curl {messages2}/messages", received),
        Step("merged", "curl {facade}/facade   # ×3", read_merged),
        Step("stop", lambda run: run.labctl("stop messages-1 messages-2"), stop_copies),
        queued_step,
        kill_step,
        Step("drain", lambda run: run.labctl("start-process messages-1") + "; "
             + run.labctl("start-process messages-2"), start_copies, screenshot=True),
    )


POST_QUEUED = f'for i in $(seq 1 {QUEUED}); do curl -X POST -d "msg=q$i" {{facade}}/facade; done'
LAB = Lab(4, None, lambda offset: Topology(port_offset=offset, cluster_name="lab4"),
          _steps(Step("queued", POST_QUEUED, post_queued, screenshot=True),
                 Step("kill", kill_owner_command, kill_owner, screenshot=True, fault=True)))
KAFKA = Lab(4, "kafka", lambda offset: Topology(port_offset=offset, cluster_name="lab4", queue="kafka"),
            _steps(Step("queued_kafka", POST_QUEUED, post_queued_kafka, screenshot=True),
                   Step("kill_broker", lambda run: run.labctl("kill kafka-1") + "; "
                        + run.labctl("start-process kafka-1"),
                        kill_broker, screenshot=True, fault=True)))
