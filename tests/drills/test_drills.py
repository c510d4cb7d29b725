"""Every node-kill drill of tracker issue 3 against a real system: the promise is that a message the facade
answered 201 for is never lost and never duplicated while one Hazelcast member is left."""

from __future__ import annotations

import pytest

from scripts import drills
from scripts.drills import Report

pytestmark = pytest.mark.drill

def assert_kept_the_promise(report: Report) -> None:
    text = report.to_text()
    assert report.posted > 0, text
    assert report.lost == [], text
    assert report.duplicated == [], text
    assert report.problems == [], text
    assert report.verdict == "PASS", text


def test_map_keeps_all_ten_after_two_logging_copies_die_with_their_members(system):
    report = drills.map_lab(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("readable through the facade after killing logging-2 + member-2") == "10/10"


def test_map_keeps_a_thousand_when_two_of_three_members_die_at_once(system):
    report = drills.map_hard(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("readable through the facade after killing member-1 + member-2") == "1000/1000"


def test_queued_messages_survive_their_owner_and_reach_late_consumers_once(system):
    report = drills.queue_lab(system, print)
    assert_kept_the_promise(report)
    assert report.posted == 100
    assert report.value_of("received by a messages copy, once") == 100


def test_a_consumer_killed_mid_stream_loses_and_repeats_nothing(system):
    report = drills.consumer_crash(system, print)
    assert_kept_the_promise(report)
    assert report.posted == 1000


# A consumer transaction whose coordinating member is killed keeps its messages reserved (the client lives on,
# so the cluster never rolls it back): they reach a copy through redelivery from the logging map, 10-15 s later.
def test_posts_answered_201_survive_losing_the_queue_owner_and_another_member_under_load(system):
    report = drills.member_loss(system, print)
    assert_kept_the_promise(report)


def test_posts_keep_succeeding_without_a_logging_copy_and_status_shows_it_dead(system):
    report = drills.logging_loss(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("POSTs failed") == "none"
    assert report.value_of("launcher status of logging-2").startswith("down")


def test_the_facade_works_from_its_cache_without_the_config_server_and_reads_it_again(system):
    report = drills.config_loss(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("facade's registry while the server is down").startswith("served from cache")
    assert report.recovery_seconds is not None


def test_losing_the_whole_cluster_answers_503_fast_and_recovers_without_restarts(system):
    report = drills.cluster_loss(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("POSTs without a cluster") == "5 x 503"
    assert report.recovery_seconds is not None


def test_a_rejoined_member_alone_still_holds_everything(system):
    report = drills.rejoin(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("readable through the facade with only the rejoined member-1 left") == "200/200"


# A member that hangs keeps its sockets open: the cluster drops it after 10 s without heartbeats
# (hazelcast/member.yaml); it thaws, finds itself alone, and merges back.
def test_a_hung_queue_owner_is_routed_around_and_merges_back_without_loss(system):
    report = drills.member_freeze(system, print)
    assert_kept_the_promise(report)
    assert int(report.value_of("POSTs answered 201 while the member was frozen")) > 0


def test_a_hung_logging_copy_is_failed_over_and_no_post_fails(system):
    report = drills.logging_freeze(system, print)
    assert_kept_the_promise(report)
    assert report.value_of("POSTs failed") == "none"
    assert int(report.value_of("POSTs answered 201 while logging-2 was frozen")) > 0


def test_what_a_hung_messages_copy_held_reaches_the_other_copy_while_it_is_still_frozen(system):
    report = drills.messages_freeze(system, print)
    assert_kept_the_promise(report)
    assert report.recovery_seconds is not None


# Task 1's retry protocol, through the facade's retry window (Prefer: wait=30): the POST waits while every
# logging copy is down and gets its 201 from the copy started meanwhile; the message is logged once.
def test_a_post_waits_out_a_logging_outage_and_is_logged_once_by_the_copy_started_meanwhile(system):
    report = drills.retry(system, print)
    assert_kept_the_promise(report)
    assert report.posted == 1
    assert report.value_of("POST answered").startswith("201 after")
