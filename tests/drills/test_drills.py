"""Every node-kill drill against a real system: the promise is that a message the facade
answered 201 for is never lost and never duplicated while one Hazelcast member is left. Each test checks the
drill's report, then reads the system itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from labctl import cli, drills
from labctl.drills import Report
from labctl.launcher import System
from labctl.timeline import Timeline
from tests.helpers import assert_real_png

pytestmark = pytest.mark.drill


def drilled(system: System, drill: Callable[..., Report], *, cluster_lost: bool = False,
            shared: bool = False) -> Report:
    """Run the drill on the fresh system, check its verdict, then read every copy, its journal and the facade
    ourselves (`cluster_lost`: the received map went with the cluster, and what the copies counted before with
    it; `shared`: the system is not fresh (other drills ran on it): only this drill's messages, which carry its
    tag, are read back, and each copy's counts are compared over this drill alone)."""
    pids = {row["name"]: row["pid"] for row in system.status()}
    counted_before = {copy: messages_tally(system, copy) for copy in system.names("messages")} if shared else {}
    report = drill(system, print)
    text = report.to_text()
    assert report.posted > 0, text
    assert (report.lost, report.duplicated, report.processed_twice, report.wrong_text, report.problems) == (
        [], [], [], [], []), text
    assert report.verdict == "PASS", text
    unanswered = {o.msg for o in report.outcomes if o.status != 201}
    assert_the_system_holds_exactly(system, report.settled, tag=report.tag if shared else "", unanswered=unanswered)
    assert_each_message_is_journaled_at_most_once_by_the_copy_that_holds_it(system, report.settled)
    assert_each_messages_copy_counts_what_it_lists(system, pids, cluster_lost, counted_before)
    return report


def as_labctl_runs_it(name: str, chart: Path, monkeypatch) -> Callable[..., Report]:
    """The drill run through `labctl drill NAME --chart FILE` (in this process), answering its report."""

    def run(system: System, out) -> Report:
        reports = []

        def run_and_keep(*args, **options) -> Report:
            reports.append(drills.run_drill(*args, **options))
            return reports[-1]

        monkeypatch.setattr(cli, "run_drill", run_and_keep)
        cli.main(["--run-dir", str(system.run_dir), "drill", name, "--chart", str(chart)])
        return reports[0]

    return run


def get_json(url: str) -> dict:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200, f"{url}: {answer.status_code} {answer.text[:200]}"
    return answer.json()


def assert_the_system_holds_exactly(system: System, messages: dict[str, str], tag: str = "",
                                    unanswered: frozenset[str] | set[str] = frozenset()) -> None:
    """After the drill has started again what it killed: on this fresh system (or, given the drill's `tag`, of the
    messages whose text starts with it) every logging copy, the facade's merged view and the messages copies
    together list exactly the messages the drill accounted for (uuid and text), each once; the facade marks
    each with the copy that lists it when it asked that copy. A POST not answered 201 (`unanswered`: its text)
    promises nothing but "at most once": one whose logging write landed after the drill last looked (an
    operation given up at its timeout and carried out later) may be listed too, once, and is read past."""
    assert messages

    def tagged(entries: list[dict], late_seen: Counter | None = None) -> list[dict]:
        """The drill's messages in one listing, read past a late one (an unanswered POST's) listed once."""
        mine = [m for m in entries if m["msg"].startswith(tag)]
        late = Counter(m["uuid"] for m in mine if m["uuid"] not in messages and m["msg"] in unanswered)
        seen = late_seen if late_seen is not None else Counter()  # across the listings that share it
        seen.update(late)
        assert max(seen.values(), default=0) <= 1, f"an unanswered POST listed twice: {seen}"
        return [m for m in mine if m["uuid"] not in late]

    for copy in system.names("logging"):
        entries = tagged(get_json(system.url(copy) + "/logging")["messages"])
        assert sorted((m["uuid"], m["msg"]) for m in entries) == sorted(messages.items()), copy
    holders, received, late_received = {}, Counter(), Counter()
    for copy in system.names("messages"):
        for m in tagged(get_json(system.url(copy) + "/messages")["messages"], late_received):
            assert messages.get(m["uuid"]) == m["msg"], f"{copy} lists {m}: another text, or never logged"
            holders[m["uuid"]] = copy
            received[m["uuid"]] += 1
    assert received == Counter(messages.keys())  # every one, none twice
    merged = tagged(get_json(system.url(system.names("facade")[0]) + "/facade")["merged"])
    assert sorted((m["uuid"], m["msg"]) for m in merged) == sorted(messages.items())
    asked = {m["received_by"] for m in merged} - {None}
    assert len(asked) <= 1  # the facade asks one messages copy
    assert all(m["received_by"] in (None, holders[m["uuid"]]) for m in merged)
    assert all(m["received_by"] is not None for m in merged if holders[m["uuid"]] in asked)


def assert_each_message_is_journaled_at_most_once_by_the_copy_that_holds_it(system: System,
                                                                           messages: dict[str, str]) -> None:
    """Every copy's journal, killed copies' included (the drill started them again): none of the messages
    twice in all, and each journaled by the copy whose GET /messages lists it. A copy killed between its
    record and its journal write leaves a message listed but not journaled: allowed, and rare."""
    holders = {m["uuid"]: copy for copy in system.names("messages")
               for m in get_json(system.url(copy) + "/messages")["messages"] if m["uuid"] in messages}
    journaled = Counter()
    for copy in system.names("messages"):
        for entry in get_json(system.url(copy) + "/messages/journal")["entries"]:
            if entry["uuid"] in messages:
                journaled[entry["uuid"]] += 1
                assert holders.get(entry["uuid"]) == copy, (entry, holders.get(entry["uuid"]))
    assert not [u for u, n in journaled.items() if n > 1], journaled.most_common(5)


def messages_tally(system: System, copy: str) -> tuple[int, int, int]:
    """A messages copy's own counts of what it recorded and of the writes it got no answer for, and how many
    records its GET /messages lists."""
    # /health tells the counts whether or not the copy is healthy at that moment: a copy just thawed
    # answers 503 until its consumer's next batch succeeds (its transaction timed out while frozen)
    health = requests.get(system.url(copy) + "/health", timeout=30)
    assert health.status_code in (200, 503), (copy, health.status_code, health.text[:200])
    counts = health.json()["checks"]["consumer"]["detail"]
    lists = len(get_json(system.url(copy) + "/messages")["messages"])
    return counts["received"], counts["unanswered"], lists


def assert_each_messages_copy_counts_what_it_lists(system: System, pids_before: dict[str, int],
                                                   cluster_lost: bool,
                                                   counted_before: dict[str, tuple[int, int, int]]) -> None:
    """A copy running since the fresh system started (or, on a shared system, since `counted_before` was read)
    has counted every record it wrote: it lists that many more (more only by writes it got no answer for). A
    copy that counted more than it lists had a record written over by another copy: a message received twice,
    which no keyed listing can show. After the whole cluster was lost a copy lists only what it recorded since
    (`cluster_lost`), and may not list more than it counted."""
    now = {row["name"]: row["pid"] for row in system.status()}
    for copy in system.names("messages"):
        if now[copy] != pids_before[copy]:
            continue  # started again by the drill: its counts began with its new process
        received, unanswered, lists = (now_value - before_value for now_value, before_value in
                                       zip(messages_tally(system, copy), counted_before.get(copy, (0, 0, 0)),
                                           strict=True))
        assert cluster_lost or received <= lists, (copy, received, unanswered, lists)
        assert lists <= received + unanswered, (copy, received, unanswered, lists)


def test_map_keeps_all_ten_after_two_logging_copies_die_with_their_members(system):
    report = drilled(system, drills.map_lab)
    assert report.value_of("readable through the facade after killing logging-2 + member-2") == "10/10"


def test_map_keeps_a_thousand_when_two_of_three_members_die_at_once(system):
    report = drilled(system, drills.map_hard)
    assert report.value_of("readable through the facade after killing member-1 + member-2") == "1000/1000"


def test_queued_messages_survive_their_owner_and_reach_late_consumers_once(system):
    report = drilled(system, drills.queue_lab)
    assert report.posted == 100
    assert report.value_of("received once, posted text") == "100/100"


def test_a_consumer_killed_mid_stream_loses_and_repeats_nothing(system):
    report = drilled(system, drills.consumer_crash)
    assert report.posted == 1000


# A consumer transaction whose coordinating member is killed keeps its messages reserved (the client lives on,
# so the cluster never rolls it back): they reach a copy through redelivery from the logging map, 10-15 s later.
def test_posts_answered_201_survive_losing_the_queue_owner_and_another_member_under_load(system):
    drilled(system, drills.member_loss)


@pytest.mark.parametrize("system", ["http", "grpc"], indirect=True)
def test_posts_keep_succeeding_without_a_logging_copy_and_status_shows_it_dead(system, tmp_path, monkeypatch):
    chart = tmp_path / "logging-loss.png"
    report = drilled(system, as_labctl_runs_it("logging-loss", chart, monkeypatch))
    assert report.value_of("POSTs failed") == "none"
    assert report.value_of("launcher status of logging-2").startswith("down")
    assert_real_png(chart, width=1200, height=480)  # its timeline: `labctl drill logging-loss --chart FILE`
    marks = Timeline.from_report(report).marks
    assert [label for _, label in marks] == ["kill logging-2", "start logging-2"]


def test_the_facade_works_from_its_cache_without_the_config_server_and_reads_it_again(system):
    report = drilled(system, drills.config_loss)
    assert report.value_of("facade's registry while the server is down").startswith("served from cache")
    assert report.recovery_seconds is not None


def test_losing_the_whole_cluster_answers_503_fast_and_recovers_without_restarts(system):
    report = drilled(system, drills.cluster_loss, cluster_lost=True)
    assert report.value_of("POSTs without a cluster") == "5 x 503"
    assert report.recovery_seconds is not None


def test_a_rejoined_member_alone_still_holds_everything(system):
    report = drilled(system, drills.rejoin)
    assert report.value_of("readable through the facade with only the rejoined member-1 left") == "200/200"


# A member that hangs keeps its sockets open: the cluster drops it after 10 s without heartbeats
# (hazelcast/member.yaml) and POSTs are acknowledged again before it thaws (the drill checks it: the two
# live members do not split in a 20 s hang, docs/fault-tolerance.md); it thaws, finds itself alone, and
# merges back. Nothing acknowledged is lost, a failed POST logged anyway arrives, and no message is
# processed twice: in quorum mode the thawed member, alone, refuses the writes a consumer would make on its
# stale queue (in available mode it may take them for a moment: docs/fault-tolerance.md, "The thaw").
def test_a_hung_queue_owner_costs_no_acknowledged_message_and_merges_back_in_quorum_mode(quorum_system):
    report = drilled(quorum_system, drills.member_freeze)
    assert report.value_of("POSTs acknowledged again before the thaw") == "yes"


def test_a_hung_logging_copy_is_failed_over_and_no_post_fails(system):
    report = drilled(system, drills.logging_freeze)
    assert report.value_of("POSTs failed") == "none"
    assert int(report.value_of("POSTs answered 201 while logging-2 was frozen")) > 0


def test_what_a_hung_messages_copy_held_reaches_the_other_copy_while_it_is_still_frozen(system):
    report = drilled(system, drills.messages_freeze)
    assert report.recovery_seconds is not None


# Task 1's retry protocol, through the facade's retry window (Prefer: wait=30): the POST waits while every
# logging copy is down and gets its 201 from the copy started meanwhile; the message is logged once.
@pytest.mark.parametrize("system", ["http", "grpc"], indirect=True)
def test_a_post_waits_out_a_logging_outage_and_is_logged_once_by_the_copy_started_meanwhile(system):
    report = drilled(system, drills.retry)
    assert report.posted == 1
    assert report.value_of("POST answered").startswith("201 after")
