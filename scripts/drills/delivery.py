"""What the system holds of what a drill posted: the logging map, each messages copy, the facade's view."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from scripts.control import Controller
from scripts.probe import facade_view, logging_listing, messages_listing, service_health

READ_TIMEOUT = 15.0


@dataclass(frozen=True)
class Delivery:
    """How many times each posted uuid is in the map (GET /logging) and across the messages copies
    (GET /messages on each); `logged` is None when no logging copy answered."""

    logged: Counter | None
    received: Counter
    per_copy: dict[str, int]
    unreadable: tuple[str, ...] = ()

    def lost(self, uuids: Iterable[str]) -> list[str]:
        return [u for u in uuids if (self.logged is not None and not self.logged[u]) or not self.received[u]]

    def duplicated(self, uuids: Iterable[str]) -> list[str]:
        return [u for u in uuids if (self.logged is not None and self.logged[u] > 1) or self.received[u] > 1]

    def complete(self, uuids: Iterable[str]) -> bool:
        return not self.unreadable and not self.lost(uuids)


def read_delivery(controller: Controller, uuids: Iterable[str]) -> Delivery:
    wanted = set(uuids)
    unreadable = []
    logged = None
    for name in controller.names("logging"):
        try:
            listing = logging_listing(controller.url(name), READ_TIMEOUT)
        except (requests.RequestException, ValueError):
            continue
        logged = Counter(u for u in listing.uuids() if u in wanted)
        break
    if logged is None:
        unreadable.append("every logging copy")
    received: Counter = Counter()
    per_copy = {}
    for name in controller.names("messages"):
        try:
            listing = messages_listing(controller.url(name), READ_TIMEOUT)
        except (requests.RequestException, ValueError):
            unreadable.append(name)
            continue
        mine = [u for u in listing.uuids() if u in wanted]
        per_copy[name] = len(mine)
        received.update(mine)
    return Delivery(logged, received, per_copy, tuple(unreadable))


def logged_texts(controller: Controller, texts: Iterable[str]) -> dict[str, str] | None:
    """uuid -> msg of the logged entries whose text is one of these (a POST answered 503 has no uuid to look
    for, and may be logged all the same); None when no logging copy answers."""
    wanted = set(texts)
    for name in controller.names("logging"):
        try:
            listing = logging_listing(controller.url(name), READ_TIMEOUT)
        except (requests.RequestException, ValueError):
            continue
        return {e.uuid: e.msg for e in listing.entries if e.msg in wanted}
    return None


def redelivery_offers(controller: Controller) -> int | None:
    """How many messages the messages copies' redelivery checks offered again (None if none answers)."""
    counts = []
    for name in controller.names("messages"):
        try:
            counts.append(service_health(controller.url(name), READ_TIMEOUT).offered_again())
        except (requests.RequestException, ValueError):
            continue
    return sum(counts) if counts else None


def readable_through_facade(facade: str, uuids: Iterable[str]) -> int:
    """How many of the uuids GET /facade shows as logged."""
    wanted = set(uuids)
    return len({u for u in facade_view(facade, READ_TIMEOUT).logged.uuids() if u in wanted})
