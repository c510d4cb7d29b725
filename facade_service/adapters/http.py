"""The facade's HTTP clients of the logging and messages copies."""

from __future__ import annotations

from facade_service.service import FullListing, Listing
from lab_common.contracts import REQUEST_ID_HEADER, Logged
from lab_common.errors import BadRequest, NoQuorum, PayloadTooLarge, Unavailable
from lab_common.failover import Pace
from lab_common.http import ServiceClient

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
        self.pace = Pace()  # the log call is one steady kind: its copies' answer times say which is slow now

    def log(self, uuid: str, msg: str, request_id: str | None = None, window: float = 0.0) -> Logged:
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        reply = self._client.call("POST", "/logging", json={"uuid": uuid, "msg": msg}, headers=headers,
                                  window=window, pace=self.pace)
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
