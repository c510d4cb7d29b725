"""The facade's queue in the cluster: Hazelcast's distributed queue."""

from __future__ import annotations

from hazelcast.errors import HazelcastError, SplitBrainProtectionError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from lab_common import metrics
from lab_common.cluster import ClusterConnection, NoAnswer
from lab_common.contracts import encode_queue_item
from lab_common.errors import Unavailable


class HazelcastQueue:
    """Offers {uuid, msg} to the queue. An offer lost with its connection is tried again; should the
    first one have landed after all, the consumers drop the second by uuid."""

    def __init__(self, connection: ClusterConnection, queue_name: str, *, attempts: int = 3):
        self._connection = connection
        self._queue_name = queue_name
        self._retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(0.1, max=1.0),
                                  # not an offer the cluster holds unanswered: waiting again would only
                                  # double the wait (the offer may still land; the consumers drop a repeat);
                                  # nor one split-brain protection refused: it is refused until members return
                                  retry=retry_if_exception_type(HazelcastError)
                                  & retry_if_not_exception_type((NoAnswer, SplitBrainProtectionError)), reraise=True)

    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        item = encode_queue_item(uuid, msg, request_id=request_id)
        try:
            with metrics.hazelcast_operation("queue.offer"):
                accepted = self._retrying(lambda: self._connection.proxy("queue", self._queue_name).offer(item))
        except HazelcastError as err:
            raise self._connection.unavailable(err, f"cannot queue the message: {type(err).__name__}: {err}") from err
        if not accepted:
            raise Unavailable(f"queue {self._queue_name} is full")
