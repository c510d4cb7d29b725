"""What a lab is made of: its steps as data (what a step does, the command a student types, what it shows),
and the results and failures a step answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from labctl.launcher import Topology

Run = TypeVar("Run")  # the run a step acts in (labctl.lab.runner.LabRun, which imports this module)


class LabFailed(Exception):
    """A step did not see what it expected: the lab stops with exit 1 and says both."""

    def __init__(self, expected: str, seen: str):
        super().__init__(f"expected {expected}; seen {seen}")
        self.expected = expected
        self.seen = seen


class LabUnavailable(Exception):
    """The lab cannot start (unknown lab, busy ports, a missing build): exit 2, the message names the fix."""


@dataclass(frozen=True)
class Table:
    """A step's real output, as rows under headers (both already in the lab's language)."""

    headers: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """What a step saw: its output table and the facts its explanation is filled with."""

    table: Table
    facts: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Step(Generic[Run]):
    """One step of a lab. Its texts are the catalogue's `<lab>.<key>.title`, `.why` (filled with the result's
    facts) and `.look` (what to look at on the status page). `command` is what a student types for it (a
    template of the run's addresses, or made by the run when it depends on the system, such as the queue's
    owner). `act` does it for real, checks what it expects and answers the result. A fault step runs under a
    bounded background load of POSTs, charted on a timeline in the report."""

    key: str
    command: str | Callable[[Run], str]
    act: Callable[[Run], Result]
    screenshot: bool = False
    fault: bool = False


@dataclass(frozen=True)
class Lab:
    """A lab of the course: the topology it starts (from the port offset) and its steps."""

    number: int
    variant: str | None  # None, "grpc" (lab 1) or "kafka" (lab 4)
    topology: Callable[[int], Topology]
    steps: tuple[Step, ...]

    @property
    def key(self) -> str:
        """Its texts' prefix in the catalogue: lab3, lab1-grpc."""
        return f"lab{self.number}" + (f"-{self.variant}" if self.variant else "")

    def text_key(self, step: Step, part: str) -> str:
        return f"lab{self.number}.{step.key}.{part}"
