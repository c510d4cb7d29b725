"""The lab's Task 3/4 experiment: POST msg1..msgN through the facade, then show which logging copy logged which
message, which messages copy received which, which copies' journals show it processed, and what GET /facade
answers; exit 1 if one is missing, doubled or processed twice. What it posts and reads goes through a port
(ExperimentPort): the running system, or a fake in the unit tests."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import requests

from labctl.journals import Journaled, JournalSource, journaled_by, processed_twice, read_journals
from labctl.lab.i18n import Catalogue, catalogue
from labctl.launcher import System
from labctl.load import PostClient
from labctl.probe import Entry, FacadeView, facade_view, messages_listing
from labctl.table import render

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


class ExperimentPort(Protocol):
    facade: str  # the facade's address, as the report names it

    def post_all(self, texts: list[str]) -> dict[str, str | None]:
        """POST each text; text -> its uuid, or None (the failure said through `out`) if it was not taken."""

    def received(self) -> dict[str, list[Entry]]:
        """What each messages copy answers on GET /messages."""

    def view(self) -> FacadeView:
        """GET /facade."""

    def journals(self) -> tuple[dict[str, list[Journaled]], list[str]]:
        """Each messages copy's journal, and the copies whose journal could not be read."""


class LaunchedSystem:
    """The experiment's port on a running system (the launcher's, or a Compose deployment)."""

    def __init__(self, system: System, facade_name: str | None, out: Callable[[str], None],
                 journals_of: JournalReader = read_journals):
        self._system = system
        self._out = out
        self._journals_of = journals_of
        self.facade = system.url(facade_name or system.names("facade")[0])

    def post_all(self, texts: list[str]) -> dict[str, str | None]:
        uuids: dict[str, str | None] = {}
        with PostClient(self.facade + "/facade", timeout=15) as client:
            for text in texts:
                outcome = client.post(text)
                uuids[text] = outcome.uuid
                if outcome.uuid is None:
                    self._out(f"  {text}: " + (f"HTTP {outcome.status} {outcome.error}" if outcome.status
                                                else outcome.error))
        return uuids

    def received(self) -> dict[str, list[Entry]]:
        return received_entries(self._system)

    def view(self) -> FacadeView:
        return facade_view(self.facade, READ_TIMEOUT)

    def journals(self) -> tuple[dict[str, list[Journaled]], list[str]]:
        return self._journals_of(self._system)


def run_experiment(system: System | None, *, count: int = 10, out: Callable[[str], None] = print,
                   settle_seconds: float = 20.0, facade_name: str | None = None,
                   port: ExperimentPort | None = None, journals_of: JournalReader = read_journals,
                   t: Catalogue | None = None) -> int:
    """POST msg1..msg`count`, print who got what in the catalogue's language (LAB_LANG's unless `t` is given);
    answers 1 if a message is missing, doubled or processed twice."""
    t = t or catalogue()
    port = port or LaunchedSystem(system, facade_name, out, journals_of)
    out(t("experiment.posting", count=count, facade=port.facade))
    posted = {uuid: text for text, uuid in port.post_all([f"msg{i}" for i in range(1, count + 1)]).items() if uuid}

    # the queue is consumed in the background: give the copies a bounded moment to take everything
    deadline = time.monotonic() + settle_seconds
    while True:
        received = port.received()
        got = Counter(m.uuid for msgs in received.values() for m in msgs if m.uuid in posted)
        if len(got) == len(posted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    everything = port.view().merged
    logged = {m.uuid: m for m in everything if m.uuid in posted}
    logged_count = Counter(m.uuid for m in everything)
    receivers = {uuid: [copy for copy, msgs in received.items() for m in msgs if m.uuid == uuid]
                 for uuid in posted}
    journals, unread = port.journals()
    processors = journaled_by(journals)

    missing = t("word.missing")
    rows = [(msg, uuid[:8], logged[uuid].logged_by if uuid in logged else missing,
             ", ".join(receivers[uuid]) or missing, ", ".join(processors.get(uuid, [])) or "-")
            for uuid, msg in posted.items()]
    out("\n" + t("experiment.who"))
    out(render([t("col.message"), t("col.uuid"), t("col.logged_by"), t("col.received_by"), t("col.processed_by")],
               rows))

    out("\n" + t("experiment.per_copy"))
    per_copy = Counter(m.logged_by for m in logged.values())
    for copy, msgs in received.items():
        per_copy[copy] = sum(1 for m in msgs if m.uuid in posted)
    out(render([t("col.copy"), t("col.messages_of_run")], sorted(per_copy.items())))

    out("\n" + t("experiment.gets"))
    gets = []
    for _ in range(3):
        view = port.view()
        mine = [m for m in view.merged if m.uuid in posted]
        gets.append((view.messages_copy or view.messages_error, len(mine), sum(1 for m in mine if m.received_by),
                     " ".join(m.msg for m in mine)))
    out(render([t("col.messages_copy"), t("col.logged"), t("col.also_received"), t("col.messages_in_order")], gets))

    failed = count - len(posted)
    missing_log = [posted[u] for u in posted if u not in logged]
    missing_queue = [posted[u] for u in posted if not receivers[u]]
    duplicated = [posted[u] for u in posted if len(receivers[u]) > 1 or logged_count[u] > 1]
    twice = processed_twice(journals, posted)
    out("")
    out(t("experiment.summary", posted=len(posted), count=count, logged=len(logged),
          received=sum(1 for u in posted if receivers[u]), duplicated=len(duplicated), twice=len(twice)))
    problems = []
    if failed:
        problems.append(t("experiment.failed", count=failed))
    if missing_log:
        problems.append(t("experiment.not_logged", messages=" ".join(missing_log)))
    if missing_queue:
        problems.append(t("experiment.not_received", messages=" ".join(missing_queue)))
    if duplicated:
        problems.append(t("experiment.duplicated", messages=" ".join(duplicated)))
    if twice:
        problems.append(t("experiment.processed_twice", messages=" ".join(
            f"{posted[u]} ({', '.join(e.copy for e in entries)})" for u, entries in twice.items())))
    if unread:
        problems.append(t("experiment.journal_unread", copies=" ".join(unread)))
    out(t("experiment.fail", problems="; ".join(problems)) if problems else t("experiment.pass"))
    return 1 if problems else 0
