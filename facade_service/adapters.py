"""The facade's adapters: HTTP clients of logging and messages, and the queue (Hazelcast's, a Kafka topic, or
none)."""

from __future__ import annotations

from hazelcast.errors import HazelcastError, SplitBrainProtectionError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from facade_service.service import FullListing, Listing
from lab_common import metrics
from lab_common.cluster import ClusterConnection, NoAnswer
from lab_common.contracts import REQUEST_ID_HEADER, Logged, encode_queue_item
from lab_common.errors import BadRequest, NoQuorum, PayloadTooLarge, Unavailable
from lab_common.http import ServiceClient
from lab_common.kafka import AcknowledgedProducer

LISTING_TIMEOUT = (2.0, 30.0)  # (connect, read): a full listing grows with the data (docs/internals.md)
PEEK = 64  # bytes looked at to tell a listing from something else


def _listing(client: ServiceClient, path: str, params: dict | None = None) -> Listing:
    reply = client.call("GET", path, params=params, timeout=LISTING_TIMEOUT)
    if reply.status == 400:
        raise BadRequest(reply.body.get("message", "bad request"))
    if reply.status != 200:
        raise Unavailable(f"{reply.base_url}{path} answered {reply.status}: {reply.body.get('message')}")
    return Listing(instance=reply.body.get("copy", reply.base_url), base_url=reply.base_url,
                   messages=reply.body["messages"], next=reply.body.get("next"))


def _full_listing(client: ServiceClient, path: str) -> FullListing:
    reply = client.call("GET", path, timeout=LISTING_TIMEOUT, spool=True)
    if reply.status != 200:
        raise Unavailable(f"{reply.base_url}{path} answered {reply.status}: {reply.body.get('message')}")
    listing = FullListing(base_url=reply.base_url, file=reply.file)
    if not listing.file.read(PEEK).lstrip().startswith(b"{"):
        listing.close()
        raise Unavailable(f"{reply.base_url}{path} answered something other than a JSON object")
    return listing


class LoggingClient:
    def __init__(self, client: ServiceClient):
        self._client = client

    def log(self, uuid: str, msg: str, request_id: str | None = None, window: float = 0.0) -> Logged:
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        reply = self._client.call("POST", "/logging", json={"uuid": uuid, "msg": msg}, headers=headers,
                                  window=window)
        if reply.status in (200, 201):
            try:
                return Logged.from_json(reply.body)
            except (KeyError, TypeError, ValueError) as err:
                raise Unavailable(f"{reply.base_url}/logging answered {reply.status} without the entry it "
                                  f"stored ({type(err).__name__}: {err})") from err
        if reply.status == 400:
            raise BadRequest(reply.body.get("message", "logging rejected the message"))
        if reply.status == 413:  # the message as JSON, with its uuid, can be larger than the body it came in
            raise PayloadTooLarge(f"the message is too large for logging: {reply.body.get('message')}")
        if reply.body.get("reason") == NoQuorum.reason:
            raise NoQuorum()
        raise Unavailable(f"logging answered {reply.status}: {reply.body.get('message')}")

    def messages(self) -> FullListing:
        return _full_listing(self._client, "/logging")

    def page(self, limit: int, after: str | None) -> Listing:
        return _listing(self._client, "/logging", {"limit": limit, **({"after": after} if after else {})})


class MessagesClient:
    def __init__(self, client: ServiceClient):
        self._client = client

    def messages(self) -> FullListing:
        return _full_listing(self._client, "/messages")


class NoQueue:
    """The facade of the lab's Tasks 1 and 3 (queue=none): a POST is only logged, and offered nowhere."""

    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        return None


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


class KafkaQueue:
    """Produces {uuid, msg} to the topic keyed by uuid (so a uuid always goes to the same partition) with an
    idempotent producer and acks=all: `offer` returns once every in-sync replica has it, and raises
    Unavailable when the brokers did not acknowledge it within the producer's timeout. Such a message may
    still land; the consumers drop a repeat by uuid, and redelivery offers it again if it never does."""

    def __init__(self, producer: AcknowledgedProducer, topic: str):
        self._producer = producer
        self._topic = topic

    def offer(self, uuid: str, msg: str, request_id: str | None = None) -> None:
        self._producer.send(self._topic, [(uuid, encode_queue_item(uuid, msg, request_id=request_id))])
