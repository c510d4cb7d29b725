import threading

import pytest

from logging_service.adapters import memory as memory_store
from logging_service.adapters.memory import MemoryMessageStore
from logging_service.service import MessageLog
from tests.logging_store_contract import LoggingStoreContract, everything


class TestMemoryMessageStore(LoggingStoreContract):
    @pytest.fixture
    def store(self):
        return MemoryMessageStore()

    @pytest.fixture
    def full_read_page(self, monkeypatch):
        return lambda size: monkeypatch.setattr(memory_store, "FULL_READ_PAGE", size)


def test_one_uuid_posted_from_many_threads_at_once_is_stored_once():
    store = MemoryMessageStore()
    message_log = MessageLog(store, "logging-1")
    created = []
    start = threading.Barrier(8)

    def post():
        start.wait()
        created.append(message_log.record("same", "msg").created)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created) == [False] * 7 + [True]
    assert store.count() == 1 and len(everything(message_log)) == 1
