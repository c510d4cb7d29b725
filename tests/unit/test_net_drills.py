"""The network drills' figures from a load's outcomes and a member's view, and their refusal to run without
hosts."""

from __future__ import annotations

import time

import pytest
import requests

from labctl.drills import DrillError, net_drills
from labctl.drills.net_drills import first_split, latency_ms, net_faults, rate, time_to_full_rate
from labctl.launcher import State, System, Topology, plan, topology
from labctl.load import Outcome
from labctl.probe import MemberHealth


def answered(at: float, elapsed: float = 0.01) -> Outcome:
    return Outcome("m", at - elapsed, elapsed, 201, uuid=f"u{at}")


def test_full_rate_is_the_first_window_after_the_heal_at_four_fifths_of_the_rate_before():
    before = [answered(t / 10) for t in range(0, 100)]  # 10/s for 10 s
    during = [answered(10 + t) for t in range(10)]  # 1/s for 10 s
    after = [answered(25 + t / 10) for t in range(0, 100)]  # 10/s again from 5 s after the heal
    outcomes = before + during + after
    baseline = rate(outcomes, 0, 10)
    assert baseline == pytest.approx(10, rel=0.05)
    assert time_to_full_rate(outcomes, 20.0, 35.0, baseline) == pytest.approx(4.5, abs=0.6)
    assert time_to_full_rate(outcomes[:110], 20.0, 35.0, baseline) is None


def test_latency_percentiles_count_only_201s_answered_in_the_window():
    outcomes = [answered(1 + i / 100, elapsed=0.010 + i / 1000) for i in range(100)]
    outcomes.append(Outcome("m", 1.5, 9.0, 503))
    assert latency_ms(outcomes, 0, 3, 50) == "60"
    assert latency_ms(outcomes, 5, 6, 50) == "-"


def test_a_network_drill_on_a_system_without_hosts_stops_before_any_fault(tmp_path, monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: tmp_path / "hazelcast.jar")
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: tmp_path / "agent.jar")
    system = System(tmp_path)
    system._save(State("run", Topology(), plan(Topology(), tmp_path, "run")))
    with pytest.raises(DrillError, match="without --hosts"):
        net_faults(system)


def test_the_split_is_the_first_look_at_which_the_watched_member_counts_fewer_members(monkeypatch):
    """A member busy in the cut (no answer) or still counting every member is looked at again."""
    answers = [MemberHealth(200, "ACTIVE", 3), requests.ConnectionError("busy"), MemberHealth(200, "ACTIVE", 2),
               MemberHealth(200, "ACTIVE", 1)]
    asked = []

    def health(url, timeout):
        asked.append(time.time())
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(net_drills, "member_health", health)
    monkeypatch.setattr(net_drills, "SPLIT_POLL", 0.0)
    at = first_split("http://member", 3, until=time.time() + 5)
    assert len(asked) == 3 and at >= asked[-1]
    monkeypatch.setattr(net_drills, "member_health", lambda url, timeout: MemberHealth(200, "ACTIVE", 3))
    assert first_split("http://member", 3, until=time.time() + 0.05) is None
