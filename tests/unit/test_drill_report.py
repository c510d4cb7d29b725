"""The drills' pure logic: counting loss and duplication, the verdict, the report's text, the bounded poll."""

from __future__ import annotations

from labctl.drills.report import Event, Report, clock
from labctl.load import Outcome, failure_summary
from labctl.probe import wait_for


def test_a_report_passes_only_without_loss_duplicates_or_problems():
    assert Report("d", "t").verdict == "PASS"
    assert Report("d", "t", lost=["m1:u1"]).verdict == "FAIL - 1 lost"
    assert Report("d", "t", wrong_text=["m1:u1"]).verdict == "FAIL - 1 with another text"
    failed = Report("d", "t", duplicated=["m:u"], problems=["POSTs hung"])
    assert not failed.passed
    assert failed.verdict == "FAIL - 1 duplicated; POSTs hung"


def test_the_report_text_lists_events_in_time_order_with_counts_and_verdict():
    report = Report("map-hard", "title", events=[Event(20.5, "killed member-2 (SIGKILL)"), Event(10.0, "posted 3")],
                    figures=[("readable after", "3/3")], posted=3, recovery_seconds=1.25,
                    recovery_meaning="kill -> read")
    text = report.to_text()
    assert text.index("posted 3") < text.index("killed member-2")
    assert "readable after" in text and "3/3" in text
    assert "time to recover (kill -> read)" in text and "1.2 s" in text
    assert text.endswith("verdict: PASS")
    assert report.value_of("readable after") == "3/3"


def test_clock_shows_milliseconds():
    assert clock(0.12).endswith(".120")


def test_failure_summary_groups_statuses_and_client_side_errors():
    failures = [Outcome("m1", 0, 0.1, 503), Outcome("m2", 0, 0.1, 503), Outcome("m3", 0, 30, None, error="ReadTimeout")]
    assert failure_summary(failures) == "2 x 503, 1 x ReadTimeout"
    assert failure_summary([]) == "none"


def test_wait_for_answers_how_long_it_took_and_the_last_value_on_timeout():
    values = iter([1, 2, 3, 4])
    value, seconds = wait_for(lambda: next(values), lambda v: v == 3, timeout=5, interval=0)
    assert value == 3 and seconds is not None
    value, seconds = wait_for(lambda: 7, lambda v: v == 8, timeout=0.05, interval=0.01)
    assert (value, seconds) == (7, None)


def test_wait_for_treats_a_failing_probe_as_not_yet():
    def probe():
        raise ValueError("not JSON")

    assert wait_for(probe, bool, timeout=0.05, interval=0.01) == (None, None)


def test_the_longest_silence_counts_the_edges_and_only_posts_answered_201():
    from labctl.drills.readings import longest_silence
    from labctl.load import Outcome

    def answered(at: float, uuid: str | None = "u") -> Outcome:
        return Outcome("m", started=at - 0.5, elapsed=0.5, status=201 if uuid else 503, uuid=uuid)

    outcomes = [answered(101.0), answered(103.0), answered(109.0, uuid=None), answered(110.0)]
    assert longest_silence(outcomes, 100.0, 112.0) == 7.0  # 103 -> 110: the 503 at 109 does not count
    assert longest_silence([], 100.0, 112.0) == 12.0
    assert longest_silence(outcomes, 100.0, 102.0) == 1.0
