"""The experiment's verdict (labctl experiment) over a fake lab on a real local HTTP server: a facade that logs
and delivers each POST to one messages copy. The copies' journals come from a fake journal reader: one that
shows a message processed twice fails the experiment, which names it."""

from __future__ import annotations

import json
import threading
import uuid as uuid_module
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from scripts.experiment import run_experiment
from scripts.journals import Journaled


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
