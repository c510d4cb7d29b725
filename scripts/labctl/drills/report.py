"""A drill's report: what it did (events) and what it found (figures, loss, duplication, problems)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from labctl.load import Outcome
from labctl.table import render


def clock(at: float) -> str:
    """Wall-clock time with milliseconds: 12:03:04.120."""
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"



@dataclass(frozen=True)
class Event:
    at: float  # time.time()
    what: str
    mark: str = ""  # a fault event's short label on the timeline chart ("kill member-2"); "" for the others


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
    processed_twice: list[str] = field(default_factory=list)  # journaled more than once, across the copies' journals
    wrong_text: list[str] = field(default_factory=list)  # listed somewhere with a text other than the one posted
    problems: list[str] = field(default_factory=list)
    tag: str = ""  # every message the drill POSTs starts with it
    settled: dict[str, str] = field(default_factory=dict)  # uuid -> text of what the drill checked at the end
    recovery_seconds: float | None = None
    recovery_meaning: str = ""
    outcomes: list[Outcome] = field(default_factory=list)  # every POST of the drill's loads: its timeline

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicated or self.processed_twice or self.wrong_text or self.problems)

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        reasons = [f"{len(self.lost)} lost"] if self.lost else []
        reasons += [f"{len(self.duplicated)} duplicated"] if self.duplicated else []
        reasons += [f"{len(self.processed_twice)} processed twice"] if self.processed_twice else []
        reasons += [f"{len(self.wrong_text)} with another text"] if self.wrong_text else []
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
            ("processed twice (the copies' journals)", len(self.processed_twice)),
            ("with another text", len(self.wrong_text)),
            ("time to recover" + (f" ({self.recovery_meaning})" if self.recovery_meaning else ""), recovery),
        ]
        lines = [f"drill {self.drill}: {self.title}", "", events, "", render(["WHAT", "COUNT"], summary), ""]
        lines += [f"lost: {' '.join(self.lost[:10])}{' ...' if len(self.lost) > 10 else ''}"] if self.lost else []
        lines += [f"duplicated: {' '.join(self.duplicated[:10])}"] if self.duplicated else []
        lines += [f"processed twice: {twice}" for twice in self.processed_twice[:10]]
        lines += [f"with another text: {' '.join(self.wrong_text[:10])}"] if self.wrong_text else []
        lines += [f"problem: {p}" for p in self.problems]
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)
