from pathlib import Path

from labctl.cli import build_parser
from labctl.drills.report import Event, Report
from labctl.load import Outcome
from labctl.timeline import Timeline, save_timeline
from tests.helpers import assert_real_png

T0 = 1_800_000_000.0  # wall-clock seconds, as Outcome.started and Event.at are


def outcome(at: float, status: int | None, elapsed: float = 0.05) -> Outcome:
    return Outcome("m", T0 + at, elapsed, status, uuid="u" if status == 201 else None)


def a_drill_under_load() -> Timeline:
    """20 s at 30 POSTs/s; a copy killed at 5 s: 503s for 3 s; no answer for 1 s; started again at 12 s."""
    outcomes = []
    for tenth in range(200):
        at = tenth / 10
        status = 503 if 5 <= at < 8 else None if 8 <= at < 9 else 201
        outcomes += [outcome(at + k / 30, status) for k in range(3)]
    return Timeline(outcomes, [(T0 + 5.0, "kill member-2"), (T0 + 12.0, "start member-2")])


def test_posts_are_counted_in_the_second_they_were_answered_by_what_they_got():
    timeline = Timeline([outcome(0.0, 201), outcome(0.5, 201, elapsed=0.6), outcome(1.2, 503), outcome(1.3, None),
                         outcome(2.0, 500)], [(T0 + 3.5, "kill logging-1")])
    assert timeline.start == T0
    assert timeline.per_second() == {"acknowledged": [1, 1, 0, 0], "unavailable": [0, 1, 0, 0],
                                     "no answer": [0, 1, 0, 0], "other": [0, 0, 1, 0]}


def test_a_drills_timeline_has_its_posts_and_only_its_fault_events_as_marks():
    report = Report("logging-loss", "title", events=[Event(T0, "POSTing from 4 threads"),
                                                     Event(T0 + 2, "killed logging-2 (SIGKILL)", "kill logging-2")],
                    outcomes=[outcome(1.0, 201)])
    timeline = Timeline.from_report(report)
    assert timeline.outcomes == report.outcomes
    assert timeline.marks == [(T0 + 2, "kill logging-2")]


def test_the_chart_is_a_real_png_with_something_drawn(tmp_path: Path):
    chart = tmp_path / "charts" / "drill.png"
    save_timeline(a_drill_under_load(), chart, "drill member-loss: PASS")
    assert_real_png(chart, width=1200, height=480)


def test_an_empty_timeline_still_draws_its_axes(tmp_path: Path):
    chart = tmp_path / "empty.png"
    save_timeline(Timeline(), chart, "nothing posted")
    assert_real_png(chart, width=1200, height=480, min_bytes=5_000)


def test_labctl_drill_takes_a_chart_file():
    args = build_parser().parse_args(["drill", "logging-loss", "--chart", "out/loss.png"])
    assert args.chart == Path("out/loss.png")
    assert build_parser().parse_args(["drill", "logging-loss"]).chart is None


def test_words_put_the_axes_and_the_legend_in_another_language(tmp_path: Path, monkeypatch):
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep the figure to read its texts
    save_timeline(a_drill_under_load(), tmp_path / "uk.png", "крок 9",
                  {"xlabel": "секунди", "ylabel": "POST за секунду", "acknowledged": "підтверджено (201)"})
    axes = drawn[0].axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("секунди", "POST за секунду")
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend[0].startswith("підтверджено (201): ") and legend[1].startswith("503 (unavailable): ")
    assert_real_png(tmp_path / "uk.png", width=1200, height=480)
