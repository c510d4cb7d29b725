"""The lab's Task 3/4 experiment: POST msg1..msgN through the facade, then show which logging copy
logged which message, which messages copy received which, which copies' journals show it processed, and what
GET /facade answers."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable

import requests

from scripts.journals import Journaled, JournalSource, journaled_by, processed_twice, read_journals
from scripts.launcher import System
from scripts.load import PostClient
from scripts.probe import Entry, facade_view, messages_listing
from scripts.table import render

JournalReader = Callable[[JournalSource], tuple[dict[str, list[Journaled]], list[str]]]

READ_TIMEOUT = 10.0


def received_entries(system: System) -> dict[str, list[Entry]]:
    """What each running messages copy answers on GET /messages (nothing for a copy that does not answer)."""
    result = {}
    for name in system.names("messages"):
        try:
            result[name] = messages_listing(system.url(name), READ_TIMEOUT).entries
        except requests.RequestException:
            result[name] = []
    return result


def received_by_copy(system: System) -> dict[str, list[dict]]:
    """As received_entries, each entry a dict (uuid, msg, ...): what the end-to-end tests read."""
    return {name: [dataclasses.asdict(e) for e in entries] for name, entries in received_entries(system).items()}


def run_experiment(system: System, *, count: int = 10, out: Callable[[str], None] = print,
                   settle_seconds: float = 20.0, facade_name: str | None = None,
                   journals_of: JournalReader = read_journals) -> int:
    facade = system.url(facade_name or system.names("facade")[0])
    posted: dict[str, str] = {}
    out(f"POST msg1..msg{count} to {facade}/facade")
    with PostClient(facade + "/facade", timeout=15) as client:
        for i in range(1, count + 1):
            outcome = client.post(f"msg{i}")
            if outcome.uuid is None:
                out(f"  msg{i}: " + (f"HTTP {outcome.status} {outcome.error}" if outcome.status else outcome.error))
                continue
            posted[outcome.uuid] = f"msg{i}"

    # the queue is consumed in the background: give the copies a bounded moment to take everything
    deadline = time.monotonic() + settle_seconds
    while True:
        received = received_entries(system)
        got = Counter(m.uuid for msgs in received.values() for m in msgs if m.uuid in posted)
        if len(got) == len(posted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    everything = facade_view(facade, READ_TIMEOUT).merged
    logged = {m.uuid: m for m in everything if m.uuid in posted}
    logged_count = Counter(m.uuid for m in everything)
    receivers = {uuid: [copy for copy, msgs in received.items() for m in msgs if m.uuid == uuid]
                 for uuid in posted}
    journals, unread = journals_of(system)
    processors = journaled_by(journals)

    rows = [(msg, uuid[:8], logged[uuid].logged_by if uuid in logged else "MISSING",
             ", ".join(receivers[uuid]) or "MISSING", ", ".join(processors.get(uuid, [])) or "-")
            for uuid, msg in posted.items()]
    out("\nWho got what")
    out(render(["MESSAGE", "UUID", "LOGGED BY", "RECEIVED BY", "PROCESSED BY (JOURNALS)"], rows))

    out("\nPer copy")
    per_copy = Counter(m.logged_by for m in logged.values())
    for copy, msgs in received.items():
        per_copy[copy] = sum(1 for m in msgs if m.uuid in posted)
    out(render(["COPY", "MESSAGES OF THIS RUN"], sorted(per_copy.items())))

    out("\nGET /facade, three times (each picks a messages copy at random)")
    gets = []
    for _ in range(3):
        view = facade_view(facade, READ_TIMEOUT)
        mine = [m for m in view.merged if m.uuid in posted]
        gets.append((view.messages_copy or view.messages_error, len(mine), sum(1 for m in mine if m.received_by),
                     " ".join(m.msg for m in mine)))
    out(render(["MESSAGES COPY", "LOGGED", "ALSO IN THAT COPY", "MESSAGES (logging order)"], gets))

    failed = count - len(posted)
    missing_log = [posted[u] for u in posted if u not in logged]
    missing_queue = [posted[u] for u in posted if not receivers[u]]
    duplicated = [posted[u] for u in posted if len(receivers[u]) > 1 or logged_count[u] > 1]
    twice = processed_twice(journals, posted)
    out("")
    out(f"posted {len(posted)}/{count}, logged {len(logged)}, received {sum(1 for u in posted if receivers[u])}"
        f", duplicated {len(duplicated)}, processed twice (journals) {len(twice)}")
    problems = []
    if failed:
        problems.append(f"{failed} POSTs failed")
    if missing_log:
        problems.append("not logged: " + " ".join(missing_log))
    if missing_queue:
        problems.append("not received by any messages copy: " + " ".join(missing_queue))
    if duplicated:
        problems.append("duplicated: " + " ".join(duplicated))
    if twice:
        problems.append("processed twice: " + " ".join(
            f"{posted[u]} ({', '.join(e.copy for e in entries)})" for u, entries in twice.items()))
    if unread:
        problems.append("journal not readable: " + " ".join(unread))
    out("verdict: " + ("FAIL - " + "; ".join(problems) if problems else "PASS - every message once"))
    return 1 if problems else 0
