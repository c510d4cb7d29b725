"""The queue's item format, written by the facade and by messages-service's redelivery, read by consumers.

An item carries when it was offered (`at`, microseconds since the epoch): the queue is FIFO, so the
head's `at` tells redelivery that everything offered before it has left the queue.
"""

from __future__ import annotations

import time

import orjson


def encode(uuid: str, msg: str, at: int | None = None) -> str:
    return orjson.dumps({"uuid": uuid, "msg": msg, "at": time.time_ns() // 1000 if at is None else at}).decode()


def decode(item: str) -> dict:
    return orjson.loads(item)
