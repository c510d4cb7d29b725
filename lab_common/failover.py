"""Choosing a copy of a service for each attempt of a call, whatever carries the call (HTTP now; any
transport that raises CopyFailed when one copy fails): random order, another copy on each attempt, and a
circuit breaker per copy that keeps a failing copy out of the rotation for a cool-down; for calls of one
steady kind (the POST's log call), the quicker of the first two copies first (Pace).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pybreaker
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)

from lab_common import metrics
from lab_common.errors import Unavailable

if TYPE_CHECKING:
    from lab_common.discovery import Discovery

log = logging.getLogger(__name__)

T = TypeVar("T")
FAILED_SECONDS = 2.0  # what a failed or refused attempt counts as in a Pace: the outgoing call timeout
CLOSED, OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN


class CopyFailed(Exception):
    """One copy did not answer usefully (connection error, timeout or 5xx); another may."""


class CopyRefused(CopyFailed):
    """A copy answered that its cluster refuses writes now (no quorum). Under a partition another copy, whose
    client is on the larger side, may take the call: it is tried like a failure, but not counted against the
    copy's breaker (the copy answered). When every attempt was refused, the last refusal is the call's answer:
    `answer` is returned, or raised when it is an exception."""

    def __init__(self, message: str, answer: object):
        super().__init__(message)
        self.answer = answer

    def outcome(self):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class CopyBreaker(pybreaker.CircuitBreakerListener):
    """A pybreaker circuit breaker for one copy, told what each call did rather than wrapping it:
    pybreaker holds its lock while a call it wraps runs, which would let one request at a time reach
    the copy. The breaker still keeps the count and the state: `fail_max` failures in a row open it;
    open, it admits no call until `reset_timeout` has passed, then one call probes it (half-open),
    and that call's outcome closes or opens it again. It listens to its own breaker for the time it
    opened (on `clock`), the metrics and the log."""

    def __init__(self, service: str, address: str, *, fail_max: int, reset_timeout: float,
                 clock: Callable[[], float]):
        self.service = service
        self.address = address
        self._opened_at = float("-inf")  # on `clock`, when it last opened
        self._clock = clock
        self._breaker = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout,
                                                 throw_new_error_on_trip=False, listeners=[self], name=address)
        metrics.record_breaker_state(service, address, CLOSED)

    @property
    def state(self) -> str:
        return self._breaker.current_state

    def probe_in(self) -> float:
        """Seconds until an open breaker admits a probe; 0 when it admits calls."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._breaker.reset_timeout - self._clock())

    def admits(self) -> bool:
        return self.probe_in() == 0.0

    def calling(self) -> None:
        """A call is about to go to the copy: if the breaker is open, that call is its probe."""
        if self.state == OPEN:
            self._breaker.half_open()

    def succeeded(self) -> None:
        try:
            self._breaker.call(_nothing)  # closed: the count of failures in a row starts again; half-open: closes
        except pybreaker.CircuitBreakerError:
            pass  # another request's failure opened it meanwhile: its next probe decides

    def failed(self, error: CopyFailed) -> None:
        try:
            self._breaker.call(_raise, error)  # counted; the fail_max-th in a row, or a failed probe, opens it
        except (CopyFailed, pybreaker.CircuitBreakerError):
            pass

    def report(self) -> dict:
        state = self.state
        shown: dict = {"state": state, "failures_in_a_row": self._breaker.fail_counter}
        if state == OPEN:
            shown["probe_in_seconds"] = round(self.probe_in(), 1)
        return shown

    def state_change(self, cb, old_state, new_state) -> None:  # pybreaker's listener call, under its lock
        if new_state.name == OPEN:
            self._opened_at = self._clock()
        metrics.record_breaker_state(self.service, self.address, new_state.name)
        if new_state.name == OPEN and (old_state is None or old_state.name == CLOSED):
            log.warning("%s %s: circuit open after %d failures in a row; skipped for %.0f s, then probed",
                        self.service, self.address, cb.fail_counter, cb.reset_timeout)
        elif new_state.name == CLOSED:
            log.info("%s %s: circuit closed, the copy answers again", self.service, self.address)


def _nothing() -> None:
    return None


def _raise(error: Exception) -> None:
    raise error


class CopyBreakers:
    """A breaker per copy of one service (by address), made when the copy is first called."""

    def __init__(self, service: str, *, fail_max: int, reset_timeout: float,
                 clock: Callable[[], float] = time.monotonic):
        self.service = service
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._clock = clock
        self._breakers: dict[str, CopyBreaker] = {}
        self._lock = threading.Lock()

    def of(self, address: str) -> CopyBreaker:
        breaker = self._breakers.get(address)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(address)
                if breaker is None:
                    breaker = self._breakers[address] = CopyBreaker(
                        self.service, address, fail_max=self._fail_max, reset_timeout=self._reset_timeout,
                        clock=self._clock)
        return breaker

    def report(self) -> dict:
        """For /health: each copy called so far, with its breaker's state."""
        with self._lock:
            breakers = sorted(self._breakers.items())
        return {address: breaker.report() for address, breaker in breakers}


class Pace:
    """How quickly each copy has lately answered one kind of call: a moving average of its answer times
    (`weight` for the newest), trusted for `memory` seconds. A call compares the first two copies of its
    random order and starts on the second when the first is clearly slower: `ratio` times as slow and
    `margin` seconds slower at least. The power of two choices: nothing changes while the copies answer
    alike, and a copy that answers but slowly (a member's backup acks that cannot reach it across a cut,
    1.5 s each) is avoided before any breaker could see it. A copy whose average has aged is tried again
    by one call (the others keep avoiding it until that call answers), so a copy that recovered is back
    in the rotation within `memory` seconds."""

    def __init__(self, *, weight: float = 0.3, memory: float = 2.0, ratio: float = 3.0, margin: float = 0.25,
                 clock: Callable[[], float] = time.monotonic):
        self._weight, self._memory, self._ratio, self._margin = weight, memory, ratio, margin
        self._clock = clock
        self._seen: dict[str, tuple[float, float]] = {}  # address -> (average seconds, when last sampled)

    def record(self, address: str, seconds: float) -> None:
        average, _ = self._seen.get(address, (seconds, 0.0))
        self._seen[address] = (average + self._weight * (seconds - average), self._clock())

    def slower(self, first: str, second: str) -> bool:
        """Whether `first` is clearly slower than `second` lately. An aged `first` is not (this call tries
        it again), and is marked fresh meanwhile so that concurrent calls do not all try it."""
        now = self._clock()
        a, b = self._seen.get(first), self._seen.get(second)
        if a is None or b is None or now - b[1] > self._memory:
            return False
        if now - a[1] > self._memory:
            self._seen[first] = (a[0], now)
            return False
        return a[0] >= self._ratio * b[0] and a[0] - b[0] >= self._margin

    def report(self) -> dict[str, float]:
        return {address: round(average, 4) for address, (average, _) in sorted(self._seen.items())}


class Failover:
    """Runs a call on copies of one service: a random order per call, the next copy on each attempt, up
    to `attempts` (and on while the call's retry window lasts). With breakers, a copy whose breaker is
    open is passed over while another copy's admits calls; when none does, the attempt probes the copy
    it would have tried without breakers, so a breaker never turns down a call that would have been
    tried, and concurrent calls do not all probe the same copy."""

    def __init__(self, service: str, discovery: Discovery, *, attempts: int, backoff: float = 0.05,
                 breakers: CopyBreakers | None = None):
        self.service = service
        self.breakers = breakers
        self._discovery = discovery
        self._attempts = attempts
        # its state lives in thread-locals: one Retrying serves every request thread
        self._retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=backoff, max=1.0),
                                  retry=retry_if_exception_type(CopyFailed), reraise=False)

    def run(self, call: Callable[[str], T], *, window: float = 0.0, pace: Pace | None = None) -> T:
        """`call(address)` on one copy after another until one does not raise CopyFailed; Unavailable when
        the attempts are spent and `window` seconds have passed (no attempt starts after it). With `pace`
        (the same one for every call of a kind), each attempt's time is recorded there, and the call starts
        on the quicker of the first two copies of its order."""
        retrying = self._retrying
        if window > 0:
            retrying = retrying.copy(stop=stop_after_attempt(self._attempts) & stop_before_delay(window))
        copies: list[str] = []
        failures: list[str] = []
        try:
            for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    if number > 1:
                        metrics.record_retry(self.service)
                    copies = self._copies(copies, patient=window > 0)
                    if pace is not None and number == 1 and len(copies) > 1 and pace.slower(copies[0], copies[1]):
                        copies = [copies[1], copies[0], *copies[2:]]
                    address = self._choose(copies, number)
                    started, failed = time.perf_counter(), False
                    try:
                        return self._through_breaker(address, call)
                    except CopyFailed as err:
                        failed = True
                        failures.append(str(err))
                        if not isinstance(err, CopyRefused):
                            self._discovery.invalidate(self.service)
                        raise
                    finally:
                        if pace is not None:  # a failed attempt counts as slow as a call's timeout at least
                            took = time.perf_counter() - started
                            pace.record(address, max(took, FAILED_SECONDS) if failed else took)
        except RetryError as err:
            last = err.last_attempt.exception()
            if isinstance(last, CopyRefused):
                return last.outcome()
        raise Unavailable(f"no copy of {self.service} answered{self._why()}", attempts=failures)

    def _copies(self, known: list[str], *, patient: bool) -> list[str]:
        """The copies in this call's random order, kept while discovery names the same ones. Discovery that
        names none is a failed attempt for a call with a retry window, else the call's answer."""
        try:
            fresh = self._discovery.addresses(self.service)
        except Unavailable as err:
            if known:
                return known
            if patient:
                raise CopyFailed(err.message) from err
            raise
        if set(fresh) != set(known):
            return random.sample(fresh, len(fresh))
        return known

    def _choose(self, copies: list[str], attempt: int) -> str:
        start = (attempt - 1) % len(copies)
        turn = copies[start:] + copies[:start]
        if self.breakers is None:
            return turn[0]
        for address in turn:
            if self.breakers.of(address).admits():
                return address
        return turn[0]  # every breaker open: this call's own next copy, as without breakers (no herd on one)

    def _through_breaker(self, address: str, call: Callable[[str], T]) -> T:
        if self.breakers is None:
            return call(address)
        breaker = self.breakers.of(address)
        breaker.calling()
        try:
            result = call(address)
        except CopyRefused:
            breaker.succeeded()  # it answered: its cluster refused
            raise
        except CopyFailed as err:
            breaker.failed(err)
            raise
        breaker.succeeded()
        return result

    def _why(self) -> str:
        if self.breakers is None:
            return ""
        states = [b["state"] for b in self.breakers.report().values()]
        if states and all(state == OPEN for state in states):
            return " (every copy's circuit breaker is open)"
        return ""
