"""The lab's Task 3/4 experiment: POST msg1..msgN through the facade, then show which logging copy
logged which message, which messages copy received which, and what GET /facade answers."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable

import requests

from scripts.lab.i18n import Catalogue, catalogue
from scripts.launcher import System
from scripts.load import PostClient
from scripts.probe import Entry, facade_view, messages_listing
from scripts.table import render

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
                   settle_seconds: float = 20.0, facade_name: str | None = None, t: Catalogue | None = None) -> int:
    """POST msg1..msg`count`, print who got what in the catalogue's language (LAB_LANG's unless `t` is given);
    answers 1 if a message is missing or doubled."""
    t = t or catalogue()
    facade = system.url(facade_name or system.names("facade")[0])
    posted: dict[str, str] = {}
    out(t("experiment.posting", count=count, facade=facade))
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

    missing = t("word.missing")
    rows = [(msg, uuid[:8], logged[uuid].logged_by if uuid in logged else missing,
             ", ".join(receivers[uuid]) or missing) for uuid, msg in posted.items()]
    out("\n" + t("experiment.who"))
    out(render([t("col.message"), t("col.uuid"), t("col.logged_by"), t("col.received_by")], rows))

    out("\n" + t("experiment.per_copy"))
    per_copy = Counter(m.logged_by for m in logged.values())
    for copy, msgs in received.items():
        per_copy[copy] = sum(1 for m in msgs if m.uuid in posted)
    out(render([t("col.copy"), t("col.messages_of_run")], sorted(per_copy.items())))

    out("\n" + t("experiment.gets"))
    gets = []
    for _ in range(3):
        view = facade_view(facade, READ_TIMEOUT)
        mine = [m for m in view.merged if m.uuid in posted]
        gets.append((view.messages_copy or view.messages_error, len(mine), sum(1 for m in mine if m.received_by),
                     " ".join(m.msg for m in mine)))
    out(render([t("col.messages_copy"), t("col.logged"), t("col.also_received"), t("col.messages_in_order")], gets))

    failed = count - len(posted)
    missing_log = [posted[u] for u in posted if u not in logged]
    missing_queue = [posted[u] for u in posted if not receivers[u]]
    duplicated = [posted[u] for u in posted if len(receivers[u]) > 1 or logged_count[u] > 1]
    out("")
    out(t("experiment.summary", posted=len(posted), count=count, logged=len(logged),
          received=sum(1 for u in posted if receivers[u]), duplicated=len(duplicated)))
    problems = []
    if failed:
        problems.append(t("experiment.failed", count=failed))
    if missing_log:
        problems.append(t("experiment.not_logged", messages=" ".join(missing_log)))
    if missing_queue:
        problems.append(t("experiment.not_received", messages=" ".join(missing_queue)))
    if duplicated:
        problems.append(t("experiment.duplicated", messages=" ".join(duplicated)))
    out(t("experiment.fail", problems="; ".join(problems)) if problems else t("experiment.pass"))
    return 1 if problems else 0
