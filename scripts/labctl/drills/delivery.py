"""What the system holds of what a drill posted, read from every side on its own: each logging copy's
GET /logging, each messages copy's GET /messages and its own counts (/health), and the facade's GET /facade."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import requests

from labctl.control import Controller
from labctl.probe import (
    ConsumerCounts,
    Entry,
    facade_view,
    logging_listing,
    messages_listing,
    service_health,
)

READ_TIMEOUT = 15.0
FACADE = "GET /facade"  # the facade's merged view, as a reader's name
READ_ERRORS = (requests.RequestException, ValueError)  # no answer, or not the shape read (ProbeError)


@dataclass(frozen=True)
class Held:
    """What one reader lists of the posted messages: uuid -> the text of each entry it lists with that uuid;
    `total` counts every entry it lists, posted or not."""

    texts: Mapping[str, tuple[str, ...]]
    total: int = 0

    @classmethod
    def of(cls, entries: Iterable[Entry], wanted: Collection[str]) -> Held:
        texts: dict[str, list[str]] = {}
        total = 0
        for entry in entries:
            total += 1
            if entry.uuid in wanted:
                texts.setdefault(entry.uuid, []).append(entry.msg)
        return cls({uuid: tuple(msgs) for uuid, msgs in texts.items()}, total)

    def count(self, uuid: str) -> int:
        return len(self.texts.get(uuid, ()))

    def missing(self, posted: Iterable[str]) -> list[str]:
        return [u for u in posted if u not in self.texts]

    def with_other_text(self, posted: Mapping[str, str]) -> list[str]:
        """The posted uuids it lists with a text other than the one posted."""
        return [u for u, msgs in self.texts.items() if any(m != posted[u] for m in msgs)]

    def right(self, posted: Mapping[str, str]) -> int:
        """How many posted messages it lists once, with the posted text."""
        return sum(1 for u, msgs in self.texts.items() if msgs == (posted[u],))


@dataclass(frozen=True)
class FacadeRead:
    """GET /facade: the merged view, which messages copy each posted uuid is marked as received by, and
    which messages copy the facade asked (None, and why, when it asked none successfully)."""

    merged: Held
    received_by: Mapping[str, str | None]
    asked: str | None
    error: str | None = None


@dataclass(frozen=True)
class Delivery:
    """Every reader's listing of the posted messages: each logging copy (all serve the one map), each messages
    copy (each lists what it received), the facade's merged view, and the readers that did not answer."""

    logging: Mapping[str, Held]
    messages: Mapping[str, Held]
    facade: FacadeRead | None = None  # None when not read (or in `unreadable`)
    unreadable: tuple[str, ...] = ()

    @cached_property  # counted once: lost() and duplicated() ask it of every posted uuid
    def received(self) -> Counter:
        """uuid -> how many entries the messages copies list for it, in all."""
        counts: Counter = Counter()
        for held in self.messages.values():
            counts.update({u: len(msgs) for u, msgs in held.texts.items()})
        return counts

    @property
    def per_copy(self) -> dict[str, int]:
        """messages copy -> how many of the posted messages it lists."""
        return {copy: len(held.texts) for copy, held in self.messages.items()}

    def received_once(self, posted: Mapping[str, str]) -> int:
        """How many posted messages the messages copies list once in all, with the posted text."""
        texts: dict[str, list[str]] = {}
        for held in self.messages.values():
            for uuid, msgs in held.texts.items():
                texts.setdefault(uuid, []).extend(msgs)
        return sum(1 for uuid, msgs in texts.items() if msgs == [posted[uuid]])

    def lost(self, posted: Iterable[str]) -> list[str]:
        """In no logging copy that answered, or received by no messages copy."""
        return [u for u in posted
                if (self.logging and not any(held.count(u) for held in self.logging.values()))
                or not self.received[u]]

    def duplicated(self, posted: Iterable[str]) -> list[str]:
        """Listed twice by a logging copy or the merged view, or twice across the messages copies."""
        readers = [*self.logging.values(), *([self.facade.merged] if self.facade else [])]
        return [u for u in posted if self.received[u] > 1 or any(held.count(u) > 1 for held in readers)]

    def with_other_text(self, posted: Mapping[str, str]) -> dict[str, list[str]]:
        """reader -> the posted uuids it lists with another text (readers without any left out)."""
        found = {name: held.with_other_text(posted) for name, held in self._readers()}
        return {name: uuids for name, uuids in found.items() if uuids}

    def short(self, posted: Iterable[str]) -> dict[str, list[str]]:
        """The logging copies and the merged view that lack posted messages the map holds (every logging copy
        reads the one map, and the facade reads one of them): reader -> what it lacks."""
        lost = set(self.lost(posted))
        held = [u for u in posted if u not in lost]
        readers = [*self.logging.items(), *([(FACADE, self.facade.merged)] if self.facade else [])]
        found = {name: reader.missing(held) for name, reader in readers}
        return {name: uuids for name, uuids in found.items() if uuids}

    def misattributed(self, posted: Iterable[str]) -> list[str]:
        """The posted uuids the merged view marks as received by a copy other than the one that lists it
        (when the facade asked that copy), or by none although the copy it asked lists it. The messages
        copies are read before the facade and a record is never taken back, so both reads agree."""
        if self.facade is None:
            return []
        holders = {u: copy for copy, held in self.messages.items() for u in held.texts}
        asked = self.facade.asked
        return [u for u in posted if u in self.facade.received_by
                and self.facade.received_by[u] != (asked if holders.get(u) == asked else None)]

    def complete(self, posted: Iterable[str]) -> bool:
        """Every reader answered, nothing is lost and no reader lacks what the map holds."""
        posted = list(posted)
        without_messages = self.facade is not None and self.facade.asked is None
        return not (self.unreadable or without_messages or self.lost(posted) or self.short(posted))

    def _readers(self) -> list[tuple[str, Held]]:
        return [*self.logging.items(), *self.messages.items(), *([(FACADE, self.facade.merged)] if self.facade else [])]


def read_delivery(controller: Controller, posted: Iterable[str], *, skip: Collection[str] = (),
                  facade: str | None = None) -> Delivery:
    """Read every logging copy and every messages copy not in `skip` (down or frozen), then GET /facade
    of `facade` (when given)."""
    wanted = set(posted)
    unreadable = []
    readers: dict[str, dict[str, Held]] = {"logging": {}, "messages": {}}
    for kind, listing in (("logging", logging_listing), ("messages", messages_listing)):
        for name in controller.names(kind):
            if name in skip:
                continue
            try:
                readers[kind][name] = Held.of(listing(controller.url(name), READ_TIMEOUT).entries, wanted)
            except READ_ERRORS:
                unreadable.append(name)
    read = None
    if facade is not None:
        try:
            read = read_facade(facade, wanted)
        except READ_ERRORS:
            unreadable.append(FACADE)
    return Delivery(readers["logging"], readers["messages"], read, tuple(unreadable))


def read_facade(facade: str, wanted: Collection[str]) -> FacadeRead:
    view = facade_view(facade, READ_TIMEOUT)
    return FacadeRead(Held.of(view.merged, wanted), {e.uuid: e.received_by for e in view.merged if e.uuid in wanted},
                      view.messages_copy, view.messages_error)


def logged_texts(controller: Controller, texts: Iterable[str], *, skip: Collection[str] = ()) -> dict[str, str] | None:
    """uuid -> msg of the logged entries whose text is one of these, as every logging copy not in `skip` lists
    them (a POST answered 503 has no uuid to look for, and may be logged all the same); None when no logging
    copy answers."""
    wanted = set(texts)
    found: dict[str, str] | None = None
    for name in controller.names("logging"):
        if name in skip:
            continue
        try:
            listing = logging_listing(controller.url(name), READ_TIMEOUT)
        except READ_ERRORS:
            continue
        found = (found or {}) | {e.uuid: e.msg for e in listing.entries if e.msg in wanted}
    return found


@dataclass(frozen=True)
class Tally:
    """One messages copy as it counts itself (its consumer's counts) and as the received map credits it (how
    many entries its GET /messages lists), at one time."""

    counts: ConsumerCounts
    listed: int

    def __sub__(self, earlier: Tally) -> Tally:
        return Tally(self.counts - earlier.counts, self.listed - earlier.listed)


NEW_PROCESS = ConsumerCounts(0, 0, 0, 0, 0, 0, 0)  # what a copy started again has counted


def read_tallies(controller: Controller, *, skip: Collection[str] = ()) -> dict[str, Tally]:
    """Each messages copy's tally (those not in `skip` that answer both)."""
    tallies = {}
    for name in controller.names("messages"):
        if name in skip:
            continue
        url = controller.url(name)
        try:
            listed = len(messages_listing(url, READ_TIMEOUT).entries)  # first: a record is listed before counted
            tallies[name] = Tally(service_health(url, READ_TIMEOUT).consumer(), listed)
        except READ_ERRORS:
            continue
    return tallies


def tally_problem(copy: str, change: Tally) -> str | None:
    """Why what a copy counts itself as having recorded over a stretch disagrees with what the received map
    credits it with (None if they agree). Its records can only be more than it counted by the writes it got
    no answer for; fewer means some were written over by another copy: a message recorded twice."""
    recorded, listed = change.counts.received, change.listed
    unanswered = change.counts.unanswered or 0
    if listed < recorded:
        return (f"{copy} recorded {recorded} but the received map credits it with {listed}: "
                f"{recorded - listed} of its records were written over (received twice)")
    if listed > recorded + unanswered:
        return (f"{copy} lists {listed} records but counted {recorded} (+{unanswered} unanswered): "
                f"it recorded messages without counting them")
    return None


def redelivery_offers(controller: Controller) -> int | None:
    """How many messages the messages copies' redelivery checks offered again (None if none answers)."""
    counts = []
    for name in controller.names("messages"):
        try:
            counts.append(service_health(controller.url(name), READ_TIMEOUT).offered_again())
        except READ_ERRORS:
            continue
    return sum(counts) if counts else None


def readable_through_facade(facade: str, posted: Mapping[str, str]) -> int:
    """How many of the posted messages GET /facade's merged view shows once, with the posted text."""
    return read_facade(facade, set(posted)).merged.right(posted)
