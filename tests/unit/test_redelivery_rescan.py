"""Redelivery's second look when members change: a write held by a member that hung lands late, with the
seq it was given before, after the scan has passed it."""

from lab_common.contracts import LoggedMessage
from messages_service.redelivery import Redelivery
from tests.unit.fakes import FakeClock, FakeMessagesCluster, FakeRedeliveryPort


def scanned_past(*, now: float) -> tuple[FakeMessagesCluster, FakeClock, Redelivery]:
    """A copy whose scan has gone up to `now - grace` over an empty log."""
    clock = FakeClock(now)
    cluster = FakeMessagesCluster()
    cluster.clock = clock
    redelivery = Redelivery(FakeRedeliveryPort(cluster), grace=5, horizon=60, lookback=30, settle=10, clock=clock)
    assert redelivery.step() == 0
    return cluster, clock, redelivery


def land_late(cluster: FakeMessagesCluster, uuid: str, logged_at: float) -> None:
    cluster.logged.append(LoggedMessage(uuid, "held", "logging-1", int(logged_at * 1e6)))


def test_a_write_that_lands_late_is_found_once_a_member_that_left_comes_back():
    cluster, clock, redelivery = scanned_past(now=1000.0)
    redelivery.membership_changed("127.0.0.1:5702", joined=False)  # hung at ~990, dropped at 1000
    clock.now = 1020.0
    assert redelivery.step() == 0  # the rescan after it left finds nothing yet
    clock.now = 1100.0
    assert redelivery.step() == 0
    land_late(cluster, "held", logged_at=992.0)  # it thawed and merged back what it held
    redelivery.membership_changed("127.0.0.1:5702", joined=True)
    clock.now = 1105.0
    assert redelivery.step() == 0  # not before the change has settled
    clock.now = 1111.0
    while redelivery.step() == 0 and clock.now < 1200:
        clock.now += 5
    assert [item["uuid"] for item in cluster.queue] == ["held"]
    assert redelivery.rescans == 2


def test_without_a_change_of_members_a_late_write_is_not_looked_for_again():
    """What the rescan is for: the forward scan alone never goes back (this is the case it covers)."""
    cluster, clock, redelivery = scanned_past(now=1000.0)
    land_late(cluster, "held", logged_at=992.0)
    for second in range(1005, 1200, 5):
        clock.now = float(second)
        redelivery.step()
    assert list(cluster.queue) == []


def test_the_first_member_list_and_new_members_start_no_rescan():
    _, clock, redelivery = scanned_past(now=1000.0)
    for port in (5701, 5702, 5703):
        redelivery.membership_changed(f"127.0.0.1:{port}", joined=True)
    clock.now = 1100.0
    redelivery.step()
    assert redelivery.rescans == 0
