"""The background load of a fault step: POSTs at a steady pace from one thread, bounded in count and time, each
answer recorded (scripts/labctl/load.py's client) for the step's timeline."""

from __future__ import annotations

import threading
import time

from labctl.load import Outcome, PostClient

PACE = 20.0  # POSTs per second: enough to see a gap on the chart, little CPU taken from the system
MOST = 1200  # POSTs at most (a minute at the pace)
LONGEST = 90.0  # seconds at most, whatever the step does
TIMEOUT = 10.0  # one POST's bound: a failed one is answered 503 well within it


class PacedLoad:
    """POSTs `<tag>N` to the facade every 1/PACE s (or right after a slower answer) until stopped or bounded."""

    def __init__(self, facade: str, tag: str):
        self._url = facade + "/facade"
        self._tag = tag
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: list[Outcome] = []
        self._thread = threading.Thread(target=self._post, name="lab-load", daemon=True)

    def __enter__(self) -> PacedLoad:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT + 5.0)

    @property
    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    def accepted(self) -> dict[str, str]:
        """uuid -> msg of every POST answered 201."""
        return {o.uuid: o.msg for o in self.outcomes if o.uuid}

    def _post(self) -> None:
        deadline = time.monotonic() + LONGEST
        with PostClient(self._url, TIMEOUT) as client:
            for number in range(1, MOST + 1):
                began = time.monotonic()
                if self._stop.is_set() or began > deadline:
                    return
                outcome = client.post(f"{self._tag}{number}")
                with self._lock:
                    self._outcomes.append(outcome)
                self._stop.wait(max(0.0, 1.0 / PACE - (time.monotonic() - began)))
