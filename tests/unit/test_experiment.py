"""The experiment's verdict and report over a fake of what it posts and reads (FakeExperimentSystem): a message
no copy received and one received twice each make it exit 1 and name the message. The real system's pass
path and a message held back: tests/e2e/test_system.py."""

from __future__ import annotations

from itertools import cycle

from scripts.experiment import run_experiment
from scripts.probe import Entry, FacadeView, Listing

COPIES = ("messages-1", "messages-2")


class FakeExperimentSystem:
    """What the experiment posts to and reads from, as a test double: every POST is logged by a logging copy in
    turn and received by a messages copy in turn, except the texts `held_back` (received by none) and
    `doubled` (received by both copies)."""

    facade = "http://fake-facade"

    def __init__(self, held_back: frozenset[str] = frozenset(), doubled: frozenset[str] = frozenset()):
        self.held_back, self.doubled = held_back, doubled
        self.logged: list[Entry] = []
        self.by_copy: dict[str, list[Entry]] = {copy: [] for copy in COPIES}

    def post_all(self, texts: list[str]) -> dict[str, str | None]:
        loggers, receivers = cycle(("logging-1", "logging-2", "logging-3")), cycle(COPIES)
        for i, text in enumerate(texts):
            entry = Entry(f"uuid-{i:04d}-{text}", text, next(loggers))
            self.logged.append(entry)
            receiver = next(receivers)
            if text in self.doubled:
                for copy in COPIES:
                    self.by_copy[copy].append(entry)
            elif text not in self.held_back:
                self.by_copy[receiver].append(entry)
        return {e.msg: e.uuid for e in self.logged}

    def received(self) -> dict[str, list[Entry]]:
        return self.by_copy

    def view(self) -> FacadeView:
        asked = {e.uuid for e in self.by_copy["messages-1"]}
        merged = [Entry(e.uuid, e.msg, e.logged_by, "messages-1" if e.uuid in asked else None) for e in self.logged]
        return FacadeView(Listing("logging-1", len(self.logged), self.logged), merged, "messages-1", None)


def run(port: FakeExperimentSystem) -> tuple[int, str]:
    lines: list[str] = []
    code = run_experiment(None, count=10, out=lines.append, settle_seconds=0.0, port=port)
    return code, "\n".join(lines)


def row(report: str, text: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(text + " "))


def test_every_message_received_once_is_a_pass():
    code, report = run(FakeExperimentSystem())
    assert code == 0 and "verdict: PASS - every message once" in report
    assert "posted 10/10, logged 10, received 10, duplicated 0" in report


def test_a_message_no_copy_received_exits_1_and_the_table_names_it():
    code, report = run(FakeExperimentSystem(held_back=frozenset({"msg3"})))
    assert code == 1
    assert row(report, "msg3").split()[-1] == "MISSING"
    assert "MISSING" not in row(report, "msg4")
    assert "verdict: FAIL - not received by any messages copy: msg3" in report


def test_a_message_received_twice_exits_1_and_the_table_names_both_copies():
    code, report = run(FakeExperimentSystem(doubled=frozenset({"msg5"})))
    assert code == 1
    assert row(report, "msg5").endswith("messages-1, messages-2")
    assert "duplicated 1" in report and "verdict: FAIL - duplicated: msg5" in report
