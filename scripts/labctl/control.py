"""What drills and the CLI drive: a deployment's processes by name, local (the launcher) or in Docker Compose."""

from __future__ import annotations

from typing import Protocol, TypedDict


class ControlError(RuntimeError):
    """A controller cannot do what it was asked; the message says what and why."""


class StatusRow(TypedDict):
    name: str
    kind: str  # member | config-server | logging | messages | facade | consul
    url: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str
    log: str


class Controller(Protocol):
    """What a drill needs from a deployment: the launcher's System and the Docker Compose adapter provide it."""

    def names(self, kind: str | None = None) -> list[str]: ...

    def url(self, name: str) -> str: ...

    def kill(self, name: str) -> float: ...

    def freeze(self, name: str) -> float:
        """Stop the process without ending it (SIGSTOP; a paused container): its sockets stay open, it answers
        nothing. Answers the time."""

    def thaw(self, name: str) -> float:
        """Let a frozen process go on (SIGCONT); answers the time."""

    def terminate(self, name: str, timeout: float = 20.0) -> None: ...

    def start_process(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None: ...

    def wait_healthy(self, names: list[str] | None = None, *, timeout: float = 120.0, progress=None) -> None: ...

    def health(self, name: str, timeout: float = 1.0) -> tuple[bool, str]: ...

    def status(self) -> list[StatusRow]: ...

    def wait_cluster_safe(self, size: int, timeout: float = 60.0) -> None: ...

    def hazelcast_cluster(self) -> tuple[str, dict[str, str]]: ...

    def kafka_brokers(self) -> dict[str, str]:
        """Each Kafka broker's client address by its name (kafka-1 -> 127.0.0.1:9092); none in Hazelcast mode."""
