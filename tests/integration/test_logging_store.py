import pytest

from logging_service.adapters import hazelcast as hazelcast_store
from logging_service.adapters.hazelcast import HazelcastMessageStore
from logging_service.service import MessageLog
from tests.logging_store_contract import LoggingStoreContract, everything

pytestmark = pytest.mark.integration


class TestHazelcastMessageStore(LoggingStoreContract):
    @pytest.fixture
    def store(self, connect, unique_name):
        return HazelcastMessageStore(connect(), unique_name)

    @pytest.fixture
    def full_read_page(self, monkeypatch):
        return lambda size: monkeypatch.setattr(hazelcast_store, "FULL_READ_PAGE", size)


def test_copies_on_different_connections_share_one_map_and_dedup_between_them(connect, cluster_settings, unique_name):
    log_a = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-1")
    second_member = cluster_settings.hz_members[1:2]  # wherever LAB_TEST_PORT_SHIFT put it
    log_b = MessageLog(HazelcastMessageStore(connect(hz_members=second_member), unique_name), "logging-2")
    assert log_a.record("u1", "m").created
    assert not log_b.record("u1", "m").created
    assert log_b.record("u2", "n").created
    assert [(m.uuid, m.logged_by) for m in everything(log_a)] == [("u1", "logging-1"), ("u2", "logging-2")]


def test_first_page_starts_at_the_smallest_seq_when_copies_first_writes_race(connect, unique_name):
    late = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-1", clock=lambda: 2_000_000_000)
    early = MessageLog(HazelcastMessageStore(connect(), unique_name), "logging-2", clock=lambda: 1_000_000_000)
    late.record("second", "b")
    early.record("first", "a")  # arrives later, but was logged with the smaller seq
    assert [m.uuid for m in late.page(None, 10)] == ["first", "second"]
