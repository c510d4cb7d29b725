"""A fault's timeline as a PNG: acknowledged POSTs (201) and failed ones (503, no answer) per second, with each
fault event (kill, freeze, thaw, stop, start...) marked where it happened. Drills build one from their report;
any tool that records Outcomes and marks on the same clock can draw one.

The clock is the wall clock, `time.time()` seconds: the one Outcome.started and the drills' events use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.load import Outcome

if TYPE_CHECKING:
    from labctl.drills.report import Report

SERIES = (  # (key, legend, colour, style): what a second's POSTs are counted as
    ("acknowledged", "acknowledged (201)", "#55A868", "-"),
    ("unavailable", "503 (unavailable)", "#C44E52", "-"),
    ("no answer", "no answer (refused, reset, timed out)", "#444444", "--"),
    ("other", "other status", "#8172B2", ":"),
)
MARK_COLOUR = "#4C72B0"


def kind_of(outcome: Outcome) -> str:
    if outcome.status == 201:
        return "acknowledged"
    if outcome.status == 503:
        return "unavailable"
    return "no answer" if outcome.status is None else "other"


@dataclass
class Timeline:
    """POST outcomes and (time, label) marks, both on the wall clock (time.time() seconds)."""

    outcomes: list[Outcome] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def from_report(cls, report: Report) -> Timeline:
        """A drill's POSTs and its fault events (those its events give a mark)."""
        return cls(list(report.outcomes), [(e.at, e.mark) for e in report.events if e.mark])

    @property
    def start(self) -> float:
        """Second 0 of the chart: the first POST or mark."""
        times = [o.started for o in self.outcomes] + [at for at, _ in self.marks]
        return min(times) if times else 0.0

    def per_second(self) -> dict[str, list[int]]:
        """Each series' count in every whole second from `start`, by when the POST was answered (or given up)."""
        start = self.start
        counts: Counter[tuple[str, int]] = Counter(
            (kind_of(o), int(o.started + o.elapsed - start)) for o in self.outcomes)
        seconds = 1 + max([second for _, second in counts] + [int(at - start) for at, _ in self.marks] + [0])
        return {key: [counts[(key, s)] for s in range(seconds)] for key, *_ in SERIES}


AXES = {"xlabel": "seconds since the first POST or event", "ylabel": "POSTs per second"}


def save_timeline(timeline: Timeline, path: Path, title: str, words: Mapping[str, str] | None = None) -> None:
    """Write the chart as a PNG at `path` (its folder made if missing). `words` puts the axes' and the series'
    texts in another language, by key: xlabel, ylabel and each series' key (SERIES)."""
    words = {**AXES, **{key: legend for key, legend, *_ in SERIES}, **(words or {})}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = timeline.per_second()
    seconds = list(range(len(counts["acknowledged"])))
    figure, axes = plt.subplots(figsize=(12, 4.8), dpi=100)
    for key, _, colour, style in SERIES:
        if key in ("acknowledged", "unavailable") or any(counts[key]):  # the two the chart is about, always
            total = sum(counts[key])
            # each count held over its whole second (the last one too)
            axes.step([*seconds, len(seconds)], [*counts[key], counts[key][-1]], where="post", color=colour,
                      linestyle=style, linewidth=1.6, label=f"{words[key]}: {total}")
    top = max([1, *(max(values, default=0) for values in counts.values())])
    axes.set_ylim(0, top * 1.25)
    start, end = timeline.start, max(1, len(seconds))
    for i, (at, label) in enumerate(sorted(timeline.marks)):
        x = at - start
        axes.axvline(x, color=MARK_COLOUR, linestyle="--", linewidth=1)
        # labels alternate in height so that events a second apart stay readable; near the right edge they
        # go to the left of their line
        right = x > 0.8 * end
        axes.annotate(label, (x, top * (1.2 - 0.08 * (i % 3))), fontsize=8, color=MARK_COLOUR,
                      ha="right" if right else "left", va="top", xytext=(-3 if right else 3, 0),
                      textcoords="offset points")
    axes.set(title=title, xlabel=words["xlabel"], ylabel=words["ylabel"])
    axes.set_xlim(0, end)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, fontsize=8, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
