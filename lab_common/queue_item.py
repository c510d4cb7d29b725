"""The queue's item format, written by the facade and by messages-service's redelivery, read by consumers."""

from __future__ import annotations

import orjson


def encode(uuid: str, msg: str) -> str:
    return orjson.dumps({"uuid": uuid, "msg": msg}).decode()


def decode(item: str) -> dict:
    return orjson.loads(item)
