"""The facade's adapters: HTTP clients of logging and messages, and the Hazelcast queue."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from functools import partial

from hazelcast.errors import HazelcastError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from facade_service.service import FullListing, Listing
from lab_common import queue_item
from lab_common.cluster import ClusterConnection
from lab_common.errors import BadRequest, Unavailable
from lab_common.http import ServiceClient

# A full listing grows with the data (100k messages are ~35 MB): it may take longer than a write, but
# not forever. Paged reads (limit, after) stay fast at any size.
LISTING_TIMEOUT = (2.0, 30.0)
PEEK = 64  # bytes looked at to tell a listing from something else


def _listing(client: ServiceClient, path: str, params: dict | None = None) -> Listing:
    reply = client.call("GET", path, params=params, timeout=LISTING_TIMEOUT)
    if reply.status == 400:
        raise BadRequest(reply.body.get("message", "bad request"))
    if reply.status != 200:
        raise Unavailable(f"{reply.copy}{path} answered {reply.status}: {reply.body.get('message')}")
    return Listing(copy=reply.body.get("copy", reply.copy), url=reply.copy, messages=reply.body["messages"],
                   next=reply.body.get("next"))


def _full_listing(client: ServiceClient, path: str) -> FullListing:
    reply = client.call("GET", path, timeout=LISTING_TIMEOUT, spool=True)
    if reply.status != 200:
        raise Unavailable(f"{reply.copy}{path} answered {reply.status}: {reply.body.get('message')}")
    listing = FullListing(url=reply.copy, file=reply.file)
    if not listing.file.read(PEEK).lstrip().startswith(b"{"):
        listing.close()
        raise Unavailable(f"{reply.copy}{path} answered something other than a JSON object")
    return listing


class LoggingClient:
    def __init__(self, client: ServiceClient):
        self._client = client

    def log(self, uuid: str, msg: str) -> dict:
        reply = self._client.call("POST", "/logging", json={"uuid": uuid, "msg": msg})
        if reply.status in (200, 201):
            return reply.body
        if reply.status == 400:
            raise BadRequest(reply.body.get("message", "logging rejected the message"))
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


class HazelcastQueue:
    """Offers {uuid, msg} to the queue. Offers that request threads make while an earlier one is on its
    way leave together, as one add_all: one queue operation, and one round of backups, for all of them.
    An offer lost with its connection is tried again; should the first one have landed after all, the
    consumers drop the second by uuid."""

    def __init__(self, connection: ClusterConnection, queue_name: str, *, attempts: int = 3,
                 wait_seconds: float = 30.0):
        self._connection = connection
        self._queue_name = queue_name
        self._wait_seconds = wait_seconds  # beyond the client's own invocation timeout: a safety net
        self._retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(0.1, max=1.0),
                                  retry=retry_if_exception_type(HazelcastError), reraise=True)
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, Future]] = []
        self._sending = False  # an add_all is on its way; offers made meanwhile wait for the next

    def offer(self, uuid: str, msg: str) -> None:
        try:
            accepted = self._retrying(self._offer_with_others, uuid, msg)
        except HazelcastError as err:
            raise Unavailable(f"cannot queue the message: {type(err).__name__}: {err}") from err
        except TimeoutError as err:
            raise Unavailable(f"the queue did not answer within {self._wait_seconds:.0f}s") from err
        if not accepted:
            raise Unavailable(f"queue {self._queue_name} is full")

    def _offer_with_others(self, uuid: str, msg: str) -> bool:
        done: Future = Future()
        with self._lock:  # items join in the order of their offer times: redelivery reads the queue as FIFO
            self._waiting.append((queue_item.encode(uuid, msg), done))
            lead, self._sending = not self._sending, True
        if lead:
            self._send_waiting()
        return done.result(self._wait_seconds)

    def _send_waiting(self) -> None:
        """Send everything waiting as one add_all; once it is answered, the next (from its callback)."""
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._sending = False
                    return
            try:
                sent = self._connection.proxy("queue", self._queue_name, blocking=False).add_all(
                    [item for item, _ in batch])
            except BaseException as err:  # no cluster (Unavailable) or the client refused it: all hear it
                for _, done in batch:
                    done.set_exception(err)
                continue
            sent.add_done_callback(partial(self._answered, batch))
            return

    def _answered(self, batch: list[tuple[str, Future]], sent) -> None:
        """On the Hazelcast client's reactor thread (or at once, if the answer was there already)."""
        try:
            accepted = sent.result()
        except BaseException as err:
            for _, done in batch:
                done.set_exception(err)
        else:
            for _, done in batch:
                done.set_result(accepted)
        self._send_waiting()
