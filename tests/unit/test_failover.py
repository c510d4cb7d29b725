"""Failover with a circuit breaker per copy: a copy that keeps failing is skipped for a cool-down, then
probed; a breaker never turns down a call that would have been tried without it."""

from __future__ import annotations

import threading

import pytest

from lab_common import metrics
from lab_common.errors import Unavailable
from lab_common.failover import CopyBreakers, CopyFailed, Failover, Pace
from tests.unit.fakes import FakeClock, FakeDiscovery


class Copies:
    """The call a Failover runs: each copy answers its name, or fails when it is down; records who was
    called and the state its breaker was in at that moment."""

    def __init__(self, breakers: CopyBreakers | None, *down: str):
        self.down = set(down)
        self.calls: list[tuple[str, str | None]] = []
        self._breakers = breakers

    def __call__(self, address: str) -> str:
        self.calls.append((address, self._breakers.of(address).state if self._breakers else None))
        if address in self.down:
            raise CopyFailed(f"{address}: ConnectionRefusedError")
        return address

    def called(self) -> list[str]:
        return [address for address, _ in self.calls]


@pytest.fixture
def clock():
    return FakeClock(1000.0)


def breakers_for(clock, service="logging-service", fail_max=2, reset_timeout=10.0) -> CopyBreakers:
    return CopyBreakers(service, fail_max=fail_max, reset_timeout=reset_timeout, clock=clock)


def failover(breakers, copies=("http://a", "http://b"), attempts=3) -> Failover:
    service = breakers.service if breakers else "s"
    return Failover(service, FakeDiscovery({service: list(copies)}), attempts=attempts, backoff=0, breakers=breakers)


def open_breaker(breakers: CopyBreakers, address: str) -> None:
    for _ in range(10):
        breakers.of(address).failed(CopyFailed(address))
        if breakers.of(address).state == "open":
            return
    raise AssertionError(f"{address}'s breaker did not open")


def test_a_copy_failing_fail_max_times_in_a_row_is_skipped_while_its_breaker_is_open(clock):
    breakers = breakers_for(clock, fail_max=2)
    copies = Copies(breakers, "http://a")
    calls = failover(breakers)
    while breakers.of("http://a").state != "open":  # the first copy tried is random
        assert calls.run(copies) == "http://b"
    assert copies.called().count("http://a") == 2
    copies.calls.clear()
    for _ in range(30):
        assert calls.run(copies) == "http://b"
    assert copies.called() == ["http://b"] * 30


def test_a_success_starts_the_count_of_failures_in_a_row_again(clock):
    breakers = breakers_for(clock, fail_max=2)
    breaker = breakers.of("http://a")
    breaker.failed(CopyFailed("a"))
    breaker.succeeded()
    breaker.failed(CopyFailed("a"))
    assert breaker.state == "closed"


def test_after_the_cool_down_one_call_probes_the_copy_half_open_and_its_success_closes_the_breaker(clock):
    breakers = breakers_for(clock, reset_timeout=10.0)
    open_breaker(breakers, "http://a")
    copies = Copies(breakers)
    calls = failover(breakers)
    clock.now += 9.9
    for _ in range(20):
        calls.run(copies)
    assert "http://a" not in copies.called()
    clock.now += 0.1
    for _ in range(50):  # until a comes first in a call's random order
        if calls.run(copies) == "http://a":
            break
    assert ("http://a", "half-open") in copies.calls
    assert breakers.of("http://a").state == "closed"


def test_a_failed_probe_opens_the_breaker_for_another_cool_down(clock):
    breakers = breakers_for(clock, reset_timeout=10.0)
    open_breaker(breakers, "http://a")
    clock.now += 10
    copies = Copies(breakers, "http://a")
    calls = failover(breakers)
    while "http://a" not in copies.called():
        assert calls.run(copies) == "http://b"
    assert breakers.of("http://a").state == "open"
    assert breakers.of("http://a").probe_in() == 10.0
    assert breakers.report()["http://a"] == {"state": "open", "failures_in_a_row": 3, "probe_in_seconds": 10.0}


def test_when_every_breaker_is_open_the_call_still_probes_a_copy_and_is_not_turned_down(clock):
    breakers = breakers_for(clock, reset_timeout=60.0)
    open_breaker(breakers, "http://a")
    open_breaker(breakers, "http://b")
    copies = Copies(breakers)  # both answer again, long before their cool-down ends
    probed = failover(breakers, attempts=1).run(copies)
    assert copies.calls == [(probed, "half-open")]
    other = ({"http://a", "http://b"} - {probed}).pop()
    assert breakers.of(probed).state == "closed" and breakers.of(other).state == "open"


def test_when_every_copy_fails_the_attempts_go_round_the_calls_own_order_and_the_503_says_so(clock):
    breakers = breakers_for(clock, reset_timeout=60.0)
    open_breaker(breakers, "http://a")
    open_breaker(breakers, "http://b")
    copies = Copies(breakers, "http://a", "http://b")
    with pytest.raises(Unavailable) as err:
        failover(breakers, attempts=3).run(copies)
    first, second, third = copies.called()
    assert first != second and third == first  # as without breakers: each attempt the next copy
    assert "every copy's circuit breaker is open" in err.value.message
    assert len(err.value.details["attempts"]) == 3


def test_calls_that_find_every_breaker_open_spread_over_the_copies_instead_of_all_probing_one(clock):
    breakers = breakers_for(clock, reset_timeout=60.0)
    for address in ("http://a", "http://b", "http://c"):
        open_breaker(breakers, address)
    copies = Copies(breakers, "http://a", "http://b", "http://c")
    calls = failover(breakers, copies=["http://a", "http://b", "http://c"], attempts=1)
    for _ in range(60):
        with pytest.raises(Unavailable):
            calls.run(copies)
    assert set(copies.called()) == {"http://a", "http://b", "http://c"}


def test_only_a_copy_failure_counts_against_its_breaker(clock):
    breakers = breakers_for(clock, fail_max=1)

    def broken(address):
        raise ValueError("a bug, not the copy's fault")

    with pytest.raises(ValueError):
        failover(breakers, copies=["http://a"]).run(broken)
    assert breakers.of("http://a").state == "closed"


def test_calls_to_one_copy_run_side_by_side_not_one_at_a_time(clock):
    """pybreaker's own call() holds its lock while the call runs; the breakers here never do."""
    breakers = breakers_for(clock)
    both_inside = threading.Barrier(2, timeout=5)
    calls = failover(breakers, copies=["http://a"])

    def meet(address):
        both_inside.wait()  # raises BrokenBarrierError unless the other call is inside at the same time
        return address

    results = []
    threads = [threading.Thread(target=lambda: results.append(calls.run(meet))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == ["http://a", "http://a"]


def test_the_breaker_state_and_its_openings_are_metrics(clock):
    breakers = breakers_for(clock, service="svc-breaker-metrics", fail_max=1)
    state = metrics.BREAKER_STATE.labels("svc-breaker-metrics", "http://a")
    opened = metrics.BREAKER_OPENED.labels("svc-breaker-metrics", "http://a")
    breaker = breakers.of("http://a")
    assert state._value.get() == 0
    breaker.failed(CopyFailed("a"))
    assert state._value.get() == 2 and opened._value.get() == 1
    clock.now += 10
    breaker.calling()
    assert state._value.get() == 1
    breaker.succeeded()
    assert state._value.get() == 0 and opened._value.get() == 1


def test_without_breakers_every_attempt_goes_to_the_next_copy_in_the_calls_order():
    copies = Copies(None, "http://a", "http://b", "http://c")
    with pytest.raises(Unavailable) as err:
        failover(None, copies=["http://a", "http://b", "http://c"], attempts=3).run(copies)
    assert sorted(copies.called()) == ["http://a", "http://b", "http://c"]
    assert "circuit" not in err.value.message


class ComesBack:
    """Every copy is down until the `after`-th call, which answers."""

    def __init__(self, after: int):
        self.after = after
        self.calls = 0

    def __call__(self, address: str) -> str:
        self.calls += 1
        if self.calls < self.after:
            raise CopyFailed(f"{address}: ConnectionRefusedError")
        return address


def test_a_call_with_a_retry_window_keeps_trying_past_its_attempts_until_a_copy_answers():
    call = ComesBack(after=7)
    assert failover(None, attempts=3).run(call, window=60) in ("http://a", "http://b")
    assert call.calls == 7


def test_a_call_without_a_window_stops_after_its_attempts():
    call = ComesBack(after=7)
    with pytest.raises(Unavailable):
        failover(None, attempts=3).run(call)
    assert call.calls == 3


def test_a_window_that_passes_with_no_copy_answering_ends_in_unavailable_after_more_than_the_attempts():
    call = ComesBack(after=10**9)
    calls = Failover("s", FakeDiscovery({"s": ["http://a"]}), attempts=2, backoff=0.05)
    with pytest.raises(Unavailable) as err:
        calls.run(call, window=0.3)
    assert call.calls > 2 and len(err.value.details["attempts"]) == call.calls


class NamesNoCopyAtFirst(FakeDiscovery):
    """Consul lists only passing copies: with every logging copy stopped it names none (Unavailable)
    until it has been asked `until` times."""

    def __init__(self, service: str, copies: list[str], until: int):
        super().__init__({})
        self.asked = 0
        self._service, self._copies, self._until = service, copies, until

    def addresses(self, service: str) -> list[str]:
        self.asked += 1
        if self.asked == self._until:
            self.addresses_by_service[self._service] = self._copies
        return super().addresses(service)


def test_within_a_window_discovery_naming_no_copy_is_one_more_failed_attempt(clock):
    discovery = NamesNoCopyAtFirst("logging-service", ["http://a"], until=3)
    calls = Failover("logging-service", discovery, attempts=1, backoff=0, breakers=breakers_for(clock))
    assert calls.run(lambda address: address, window=60) == "http://a"
    assert discovery.asked == 3


def test_without_a_window_discovery_naming_no_copy_is_the_calls_answer_at_once(clock):
    discovery = NamesNoCopyAtFirst("logging-service", ["http://a"], until=3)
    calls = Failover("logging-service", discovery, attempts=3, backoff=0, breakers=breakers_for(clock))
    with pytest.raises(Unavailable) as err:
        calls.run(lambda address: address)
    assert err.value.message == "no copies of logging-service" and discovery.asked == 1


# --- Pace: the quicker of the first two copies first, for one steady kind of call ---------------------------

def test_a_copy_is_clearly_slower_only_when_both_as_many_times_and_as_many_seconds_slower(clock):
    pace = Pace(clock=clock)
    for address, seconds in (("a", 1.5), ("b", 0.03), ("c", 0.05), ("d", 0.2)):
        pace.record(address, seconds)
    assert pace.slower("a", "b")
    assert not pace.slower("b", "a")
    assert not pace.slower("c", "b")  # 1.7 times as slow: noise
    assert not pace.slower("d", "b")  # 6.7 times, but 0.17 s slower only
    assert not pace.slower("a", "never-called")


def test_a_slow_copy_whose_average_aged_is_tried_again_by_one_call_and_avoided_by_the_rest_meanwhile(clock):
    pace = Pace(memory=2.0, clock=clock)
    pace.record("a", 1.5)
    pace.record("b", 0.03)
    clock.now += 2.1
    pace.record("b", 0.03)
    assert not pace.slower("a", "b")  # aged: this call tries it again
    assert pace.slower("a", "b")  # the others still avoid it until that call answers
    pace.record("a", 0.03)  # it answers quickly now: its average falls, and it is back in turn
    for _ in range(10):
        pace.record("a", 0.03)
    assert not pace.slower("a", "b")


def test_with_pace_a_slow_copy_is_not_called_first_and_copies_alike_share_the_calls_evenly(clock):
    copies = ("http://a", "http://b", "http://c")
    calls = failover(None, copies=copies)
    pace = Pace(clock=clock)
    pace.record("http://a", 1.5)
    for address in copies[1:]:
        pace.record(address, 0.01)
    called = Copies(None)
    for _ in range(300):
        calls.run(called, pace=pace)
    assert "http://a" not in called.called()
    without = Copies(None)
    for _ in range(300):
        calls.run(without)
    assert 50 < without.called().count("http://a") < 150  # the random order alone: about a third

    alike = Pace(clock=clock)
    evenly = Copies(None)
    for _ in range(600):
        calls.run(evenly, pace=alike)
    assert all(130 < evenly.called().count(address) < 270 for address in copies), evenly.called()
