"""The experiment's verdict (labctl experiment) over fakes. First a fake lab on a real local HTTP server (a
facade that logs and delivers each POST to one messages copy) with a fake journal reader: a journal that shows
a message processed twice fails the experiment, which names it. Then a fake of everything it posts and reads
(FakeExperimentSystem): a message no copy received and one received twice each make it exit 1 and name the
message. The real system's pass path and a message held back: tests/e2e/test_system.py."""

from __future__ import annotations

import json
import threading
import uuid as uuid_module
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle
from urllib.parse import parse_qs

import pytest

from labctl.experiment import run_experiment
from labctl.journals import Journaled
from labctl.probe import Entry, FacadeView, Listing


class FakeLab(BaseHTTPRequestHandler):
    """POST /facade-1/facade logs the message and hands it to messages-1 or -2 in turn; the GETs list them."""

    def do_POST(self):
        lab = self.server.lab
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        uuid, msg = uuid_module.uuid4().hex, form["msg"][0]
        lab["logged"].append({"uuid": uuid, "msg": msg, "logged_by": "logging-1", "seq": len(lab["logged"])})
        lab["received"][f"messages-{len(lab['logged']) % 2 + 1}"].append({"uuid": uuid, "msg": msg})
        self._answer(201, {"uuid": uuid, "msg": msg})

    def do_GET(self):
        lab = self.server.lab
        _, name, what = self.path.split("/", 2)
        if what == "messages":
            self._answer(200, {"copy": name, "count": len(lab["received"][name]), "messages": lab["received"][name]})
        else:
            held = {m["uuid"] for m in lab["received"]["messages-1"]}
            merged = [{**m, "received_by": "messages-1" if m["uuid"] in held else None} for m in lab["logged"]]
            self._answer(200, {"merged": merged, "messages": {"copy": "messages-1"},
                               "logging": {"copy": "logging-1", "count": len(merged), "messages": lab["logged"]}})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class FakeSystem:
    def __init__(self, base: str):
        self.base = base

    def names(self, kind: str | None = None) -> list[str]:
        return {"facade": ["facade-1"], "messages": ["messages-1", "messages-2"]}.get(kind, [])

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


class FakeJournalReader:
    """Journals as the copies would keep them: each received message once by its copy, plus `extra` entries."""

    def __init__(self, lab: dict, extra: list[tuple[str, int]] = ()):
        self.lab = lab
        self.extra = extra  # (copy, index of the logged message) journaled once more

    def __call__(self, system) -> tuple[dict[str, list[Journaled]], list[str]]:
        journals = {copy: [Journaled(m["uuid"], copy, f"b{i}", 1) for i, m in enumerate(messages)]
                    for copy, messages in self.lab["received"].items()}
        for copy, index in self.extra:
            journals[copy].append(Journaled(self.lab["logged"][index]["uuid"], copy, "again", 2))
        return journals, []


@pytest.fixture
def lab():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLab)
    server.daemon_threads = True
    server.lab = {"logged": [], "received": {"messages-1": [], "messages-2": []}}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.lab, FakeSystem(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def test_every_message_journaled_once_passes_and_the_table_shows_who_processed_each(lab):
    state, system = lab
    lines = []
    assert run_experiment(system, count=4, out=lines.append, journals_of=FakeJournalReader(state)) == 0, lines
    text = "\n".join(lines)
    assert "PROCESSED BY (JOURNALS)" in text and "processed twice (journals) 0" in text
    assert "verdict: PASS" in text


def test_a_journal_that_shows_a_message_twice_fails_the_experiment_and_names_it(lab):
    state, system = lab
    lines = []
    reader = FakeJournalReader(state, extra=[("messages-1", 2)])  # msg3 went to messages-2, and messages-1 too
    assert run_experiment(system, count=4, out=lines.append, journals_of=reader) == 1
    text = "\n".join(lines)
    msg3 = next(line for line in text.splitlines() if line.startswith("msg3 "))
    assert msg3.endswith("messages-1, messages-2"), msg3  # the table's journal column
    assert "processed twice (journals) 1" in text
    assert "verdict: FAIL - processed twice: msg3 (messages-1, messages-2)" in text


def test_one_copy_journaling_a_message_twice_fails_the_experiment_too(lab):
    state, system = lab
    lines = []
    reader = FakeJournalReader(state, extra=[("messages-2", 0)])  # msg1 went to messages-2
    assert run_experiment(system, count=2, out=lines.append, journals_of=reader) == 1
    assert lines[-1] == "verdict: FAIL - processed twice: msg1 (messages-2, messages-2)"


COPIES = ("messages-1", "messages-2")


class FakeExperimentSystem:
    """What the experiment posts to and reads from, as a test double: every POST is logged by a logging copy in
    turn and received by a messages copy in turn, except the texts `held_back` (received by none) and
    `doubled` (received by both copies)."""

    facade = "http://fake-facade"

    def __init__(self, held_back: frozenset[str] = frozenset(), doubled: frozenset[str] = frozenset()):
        self.held_back, self.doubled = held_back, doubled
        self.logged: list[Entry] = []
        self.by_copy: dict[str, list[Entry]] = {copy: [] for copy in COPIES}

    def post_all(self, texts: list[str]) -> dict[str, str | None]:
        loggers, receivers = cycle(("logging-1", "logging-2", "logging-3")), cycle(COPIES)
        for i, text in enumerate(texts):
            entry = Entry(f"uuid-{i:04d}-{text}", text, next(loggers))
            self.logged.append(entry)
            receiver = next(receivers)
            if text in self.doubled:
                for copy in COPIES:
                    self.by_copy[copy].append(entry)
            elif text not in self.held_back:
                self.by_copy[receiver].append(entry)
        return {e.msg: e.uuid for e in self.logged}

    def received(self) -> dict[str, list[Entry]]:
        return self.by_copy

    def journals(self) -> tuple[dict[str, list[Journaled]], list[str]]:
        """Each copy journals what it received, once (a doubled message: by both copies)."""
        return {copy: [Journaled(e.uuid, copy, f"b{i}", i) for i, e in enumerate(entries)]
                for copy, entries in self.by_copy.items()}, []

    def view(self) -> FacadeView:
        asked = {e.uuid for e in self.by_copy["messages-1"]}
        merged = [Entry(e.uuid, e.msg, e.logged_by, "messages-1" if e.uuid in asked else None) for e in self.logged]
        return FacadeView(Listing("logging-1", len(self.logged), self.logged), merged, "messages-1", None)


def run(port: FakeExperimentSystem) -> tuple[int, str]:
    lines: list[str] = []
    code = run_experiment(None, count=10, out=lines.append, settle_seconds=0.0, port=port)
    return code, "\n".join(lines)


def row(report: str, text: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(text + " "))


def test_every_message_received_once_is_a_pass():
    code, report = run(FakeExperimentSystem())
    assert code == 0 and "verdict: PASS - every message once" in report
    assert "posted 10/10, logged 10, received 10, duplicated 0" in report


def test_a_message_no_copy_received_exits_1_and_the_table_names_it():
    code, report = run(FakeExperimentSystem(held_back=frozenset({"msg3"})))
    assert code == 1
    assert row(report, "msg3").split()[-2:] == ["MISSING", "-"]  # received by none, in no journal
    assert "MISSING" not in row(report, "msg4")
    assert "verdict: FAIL - not received by any messages copy: msg3" in report


def test_a_message_received_twice_exits_1_and_the_table_names_both_copies():
    code, report = run(FakeExperimentSystem(doubled=frozenset({"msg5"})))
    assert code == 1
    assert row(report, "msg5").endswith("messages-1, messages-2")
    assert "duplicated 1" in report and "verdict: FAIL - duplicated: msg5" in report
