"""The Hazelcast adapter of the message log: an IMap of uuid -> JSON entry (queryable by its fields)."""

from __future__ import annotations

import json

from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import HazelcastError
from hazelcast.predicate import greater

from lab_common.cluster import ClusterConnection
from lab_common.errors import Unavailable
from logging_service.service import LoggedMessage


def _decode(value: HazelcastJsonValue) -> LoggedMessage:
    return LoggedMessage(**json.loads(value.to_string()))


class HazelcastMessageStore:
    def __init__(self, connection: ClusterConnection, map_name: str):
        self._connection = connection
        self._map_name = map_name

    def _map(self):
        return self._connection.client().get_map(self._map_name).blocking()

    def add_if_absent(self, message: LoggedMessage) -> LoggedMessage | None:
        value = HazelcastJsonValue(json.dumps(message.to_json(), ensure_ascii=False))
        try:
            existing = self._map().put_if_absent(message.uuid, value)
        except HazelcastError as err:
            raise Unavailable(f"cannot store in map {self._map_name}: {type(err).__name__}: {err}") from err
        return None if existing is None else _decode(existing)

    def all_messages(self) -> list[LoggedMessage]:
        try:
            values = self._map().values()
        except HazelcastError as err:
            raise Unavailable(f"cannot read map {self._map_name}: {type(err).__name__}") from err
        return sorted((_decode(v) for v in values), key=lambda m: m.seq)

    def page(self, after_seq: int, limit: int) -> list[LoggedMessage]:
        try:
            values = self._map().values(greater("seq", after_seq))
        except HazelcastError as err:
            raise Unavailable(f"cannot read map {self._map_name}: {type(err).__name__}") from err
        return sorted((_decode(v) for v in values), key=lambda m: m.seq)[:limit]
