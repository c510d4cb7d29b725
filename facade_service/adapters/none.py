"""No queue (queue=none, the lab's Tasks 1 and 3)."""

from __future__ import annotations


class NoQueue:
    """The facade of the lab's Tasks 1 and 3 (queue=none): a POST is only logged, and offered nowhere."""

    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        return None
