"""Processed more than once, counted from the messages copies' journals (GET /messages/journal): each copy's own
append-only record of every message it processed, kept outside the received map. The map is keyed by uuid, so a
message processed twice (two copies, or one copy twice) shows in it once at most; in the journals it shows twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import requests

from labctl.probe import ProbeError

PAGE = 10_000  # entries per GET (the route's largest page)
READ_ERRORS = (requests.RequestException, ValueError)  # no answer, or not a journal (ProbeError)


class JournalSource(Protocol):
    """What the journals are read from: anything that names the messages copies and their URLs (the launcher's
    System, the Docker adapter, a drill's controller)."""

    def names(self, kind: str | None = None) -> list[str]: ...

    def url(self, name: str) -> str: ...


@dataclass(frozen=True)
class Journaled:
    """One journal entry: `copy` processed `uuid` in its batch `batch`, at `at` (µs since the epoch)."""

    uuid: str
    copy: str
    batch: str
    at: int

    @classmethod
    def of(cls, item: object) -> Journaled:
        try:
            return cls(str(item["uuid"]), str(item["copy"]), str(item["batch"]), int(item["at"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ProbeError(f"not a journal entry: {type(err).__name__} {err}") from err


def read_journal(base_url: str, timeout: float, session: requests.Session | None = None) -> list[Journaled]:
    """A messages copy's whole journal, page by page, in append order."""
    entries: list[Journaled] = []
    after = 0
    while True:
        response = (session or requests).get(f"{base_url}/messages/journal", params={"limit": PAGE, "after": after},
                                             timeout=timeout)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise ProbeError(f"{response.url} answered no journal")
        entries += [Journaled.of(item) for item in body["entries"]]
        if body.get("next") is None:
            return entries
        after = int(body["next"])


def read_journals(source: JournalSource, timeout: float = 15.0) -> tuple[dict[str, list[Journaled]], list[str]]:
    """Every messages copy's journal (copy -> its entries), and the copies whose journal could not be read."""
    journals, unread = {}, []
    for name in source.names("messages"):
        try:
            journals[name] = read_journal(source.url(name), timeout)
        except READ_ERRORS:
            unread.append(name)
    return journals, unread


def processed_twice(journals: Mapping[str, Iterable[Journaled]],
                    among: Collection[str] | None = None) -> dict[str, list[Journaled]]:
    """uuid -> every entry of it, for each uuid (of `among`, when given) journaled more than once in all:
    by two copies, or twice by one."""
    seen: dict[str, list[Journaled]] = defaultdict(list)
    for entries in journals.values():
        for entry in entries:
            if among is None or entry.uuid in among:
                seen[entry.uuid].append(entry)
    return {uuid: entries for uuid, entries in seen.items() if len(entries) > 1}


def journaled_by(journals: Mapping[str, Iterable[Journaled]]) -> dict[str, list[str]]:
    """uuid -> the copy of each entry of it, in the order of the journals."""
    found: dict[str, list[str]] = defaultdict(list)
    for entries in journals.values():
        for entry in entries:
            found[entry.uuid].append(entry.copy)
    return found


def who(entries: Iterable[Journaled]) -> str:
    """'messages-1 (batch 3f2a1c-7), messages-2 (batch 9b0e44-2)': where each entry of a uuid came from."""
    return ", ".join(f"{e.copy} (batch {e.batch})" for e in entries)
