"""The Hazelcast adapter of the message log: an IMap of uuid -> JSON entry, with the contract's seq index.
Pages are index range scans over seq in widening windows (docs/internals.md, "The logging store").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import orjson
from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import HazelcastError
from hazelcast.predicate import between

from lab_common import metrics
from lab_common.cluster import ClusterConnection, add_index, move_mark
from lab_common.contracts import FIRST_SEQ_MARK, SEQ_INDEX, LoggedMessage, meta_map
from lab_common.errors import Unavailable
from logging_service.service import cut_page

FIRST_WINDOW_US = 50_000  # 50 ms of messages: about a page at the rates this system takes
CLOCK_SKEW_US = 60_000_000  # copies' clocks may differ by this much
FULL_READ_PAGE = 5000  # messages per range scan of a full read
MAX_WINDOWS = 64  # widening by 4 covers 50 ms to centuries in ~30 scans; more means a bug, not a sparse log


class HazelcastMessageStore:
    def __init__(self, connection: ClusterConnection, map_name: str):
        self._connection = connection
        self._map_name = map_name
        self._prepared_client = None  # the client the index and the first-seq mark were set up through
        self._marked_down_to: int | None = None  # the lowest seq this copy has lowered first-seq to
        self._mark_lock = threading.Lock()
        self._us_per_message: float | None = None  # how far apart messages were on the last full page

    def _map(self):
        client = self._connection.client()
        messages = self._connection.proxy("map", self._map_name)
        if self._prepared_client is not client:
            self._marked_down_to = None
            if add_index(messages, self._map_name, SEQ_INDEX):  # refused (quorum lost): added on a later call
                self._prepared_client = client
        return messages

    def _meta(self):
        return self._connection.proxy("map", meta_map(self._map_name))

    def add_if_absent(self, message: LoggedMessage) -> LoggedMessage | None:
        value = HazelcastJsonValue(message.to_text())
        try:
            messages = self._map()
            marked = self._marked_down_to
            if marked is None or message.seq < marked:
                self._mark_first_seq(message.seq)
            with metrics.hazelcast_operation("map.put_if_absent"):
                existing = messages.put_if_absent(message.uuid, value)
            if existing is not None and self._connection.confirms_writes:
                self._confirm(messages, message.uuid, existing)
        except HazelcastError as err:
            raise self._connection.unavailable(err, f"cannot store in map {self._map_name}: {type(err).__name__}: {err}"
                                               ) from err
        return None if existing is None else LoggedMessage.from_text(existing.to_string())

    @staticmethod
    def _confirm(messages, uuid: str, existing: HazelcastJsonValue) -> None:
        """Write a stored record again, unchanged, so that it is answered as stored only once every backup holds
        it: the first write of it may have failed unconfirmed (a backup out of reach), leaving it on its owner
        alone, and a cluster that then promotes a backup without it loses it for good if the owner's merge
        fails (docs/fault-tolerance.md, "The consistency choice")."""
        with metrics.hazelcast_operation("map.replace_if_same"):
            messages.replace_if_same(uuid, existing, existing)

    def _mark_first_seq(self, seq: int) -> None:
        """Lower the map's first-seq mark (where reads start) to `seq` if it is smaller, before the
        message with that seq is written: no read ever starts after a stored message."""
        move_mark(self._meta(), FIRST_SEQ_MARK, seq, forward=False)
        with self._mark_lock:
            if self._marked_down_to is None or seq < self._marked_down_to:
                self._marked_down_to = seq

    def all_as_json(self) -> Iterator[list[str]]:
        """Pages of FULL_READ_PAGE (index range scans), read one at a time: no one answer from the
        cluster, and no list here, holds everything; the texts are those add_if_absent stored."""
        after = None
        while True:
            page = self._scan(after, FULL_READ_PAGE)
            yield [text for _, text in page]
            if len(page) < FULL_READ_PAGE:
                return
            after = page[-1][0]

    def page(self, after_seq: int | None, limit: int) -> list[LoggedMessage]:
        return [LoggedMessage.from_text(text) for _, text in self._scan(after_seq, limit)]

    def _scan(self, after_seq: int | None, limit: int) -> list[tuple[int, str]]:
        """The page that page() promises, as (seq, JSON text) pairs; fewer than `limit` only at the end."""
        try:
            messages = self._map()
            low = after_seq + 1 if after_seq is not None else self._meta().get(FIRST_SEQ_MARK)
            if low is None:
                return []
            end = time.time_ns() // 1000 + CLOCK_SKEW_US  # no seq is later: the scan never asks past it
            window, found, scans = self._window_for(limit), [], 0
            while low <= end and len(found) < limit:
                if scans == MAX_WINDOWS:
                    raise Unavailable(f"a page of {self._map_name} took over {MAX_WINDOWS} range scans")
                scans += 1
                with metrics.hazelcast_operation("map.values_range"):
                    values = messages.values(between(SEQ_INDEX.attribute, low, min(low + window, end)))
                batch = [v.to_string() for v in values]
                found.extend((orjson.loads(text)[SEQ_INDEX.attribute], text) for text in batch)
                low += window + 1
                window = window * 4 if len(batch) < (limit + 1) // 2 else window  # sparse: widen (limit 1 too)
        except HazelcastError as err:
            raise Unavailable(f"cannot read map {self._map_name}: {type(err).__name__}") from err
        page = cut_page(sorted(found), limit, seq=lambda entry: entry[0])
        if len(page) >= limit > 1:  # spacing within the page: a cursor far before the data says nothing
            self._us_per_message = max(1.0, (page[-1][0] - page[0][0]) / (len(page) - 1))
        return page

    def _window_for(self, limit: int) -> int:
        """A first window that should hold a page, from the spacing of the last full page read: most
        pages then cost one index scan."""
        if self._us_per_message is None:
            return FIRST_WINDOW_US
        return int(self._us_per_message * limit * 1.25)
