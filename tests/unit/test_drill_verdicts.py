"""The drills' verdict: what they read from every copy and the facade, and what they make of it. A fake lab
answers GET /logging, /messages, /messages/journal, /health and /facade per copy over a real local HTTP server;
each check is shown to pass on a lab that kept the promise and to fail on one that did not."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from labctl.drills import framework
from labctl.drills.delivery import (
    FACADE,
    Delivery,
    FacadeRead,
    Held,
    Tally,
    logged_texts,
    read_delivery,
    tally_problem,
)
from labctl.drills.framework import DrillRun
from labctl.drills.report import Report
from labctl.load import Outcome
from labctl.probe import ConsumerCounts

LOGGING = ("logging-1", "logging-2", "logging-3")
MESSAGES = ("messages-1", "messages-2")
COUNTED = ("received", "taken", "transactions", "dropped", "redelivered", "not_committed", "unanswered")


class FakeLab:
    """What each copy of a lab answers. `deliver` is what a lab that keeps the promise does with a message;
    tests then spoil one copy's answer."""

    def __init__(self):
        self.logged = {copy: [] for copy in LOGGING}  # copy -> [(uuid, msg)] as its GET /logging lists them
        self.received = {copy: [] for copy in MESSAGES}  # copy -> [(uuid, msg)] as its GET /messages lists them
        self.counts = {copy: dict.fromkeys(COUNTED, 0) for copy in MESSAGES}
        self.journals = {copy: [] for copy in MESSAGES}  # copy -> its journal's entries, in append order
        self.facade_asks = "messages-1"  # the messages copy the facade's GET reads
        self.facade_reads = "logging-1"  # the logging copy the facade's GET reads
        self.merged_override: list[dict] | None = None
        self.failing: set[str] = set()  # copies answering 500

    def log(self, uuid: str, msg: str) -> None:
        for entries in self.logged.values():
            entries.append((uuid, msg))

    def record(self, uuid: str, msg: str, copy: str) -> None:
        self.received[copy].append((uuid, msg))
        self.counts[copy]["received"] += 1
        self.counts[copy]["taken"] += 1
        self.journal(uuid, copy)

    def journal(self, uuid: str, copy: str) -> None:
        self.journals[copy].append({"uuid": uuid, "at": 1, "copy": copy, "batch": f"b{len(self.journals[copy])}"})

    def deliver(self, uuid: str, msg: str, copy: str = "messages-1") -> None:
        self.log(uuid, msg)
        self.record(uuid, msg, copy)

    def answer(self, name: str, what: str, query: dict[str, list[str]] | None = None) -> tuple[int, object]:
        if name in self.failing:
            return 500, {"error": "internal_error"}
        if what == "messages/journal":  # in pages of at most 2, to be read page by page
            after = int((query or {}).get("after", ["0"])[0])
            page = self.journals[name][after:after + 2]
            more = after + len(page) < len(self.journals[name])
            return 200, {"copy": name, "count": len(page), "entries": page,
                         "next": str(after + len(page)) if more else None}
        if what == "logging":
            return 200, self._listing(name, self.logged[name], "logged_by")
        if what == "messages":
            return 200, self._listing(name, self.received[name], "received_by")
        if what == "health":
            return 200, {"status": "ok", "checks": {
                "consumer": {"ok": True, "detail": {"state": "running", **self.counts[name]}},
                "redelivery": {"ok": True, "detail": {"offered_again": 0}}}}
        if what == "facade":
            held = {uuid for uuid, _ in self.received[self.facade_asks]}
            merged = [{"uuid": u, "msg": m, "logged_by": self.facade_reads,
                       "received_by": self.facade_asks if u in held else None}
                      for u, m in self.logged[self.facade_reads]]
            if self.merged_override is not None:
                merged = self.merged_override
            return 200, {"count": len(merged), "merged": merged,
                         "logging": self._listing(self.facade_reads, self.logged[self.facade_reads], "logged_by"),
                         "messages": self._listing(self.facade_asks, self.received[self.facade_asks], "received_by")}
        return 404, {"error": "not_found"}

    @staticmethod
    def _listing(copy: str, entries: list[tuple[str, str]], by: str) -> dict:
        return {"copy": copy, "count": len(entries),
                "messages": [{"uuid": u, "msg": m, by: copy, "seq": i} for i, (u, m) in enumerate(entries)]}


class FakeController:
    """The launcher's names and URLs over the fake lab's server; killing and starting only take note."""

    def __init__(self, base: str):
        self.base = base
        self.kinds = {"member": ["member-1", "member-2", "member-3"], "logging": list(LOGGING),
                      "messages": list(MESSAGES), "facade": ["facade-1"]}
        self.killed: list[str] = []

    def names(self, kind: str | None = None) -> list[str]:
        return list(self.kinds.get(kind, [])) if kind else [n for names in self.kinds.values() for n in names]

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def kill(self, name: str) -> float:
        self.killed.append(name)
        return time.time()

    def terminate(self, name: str, timeout: float = 20.0) -> None:
        self.killed.append(name)

    def start_process(self, name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        pass

    def wait_healthy(self, names=None, *, timeout: float = 120.0, progress=None) -> None:
        pass

    def wait_cluster_safe(self, size: int, timeout: float = 60.0) -> None:
        pass


class Copies(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        _, name, what = url.path.split("/", 2)
        status, body = self.server.lab.answer(name, what, parse_qs(url.query))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def lab():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Copies)
    server.daemon_threads = True
    server.lab = FakeLab()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.lab, FakeController(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def short_waits(monkeypatch):
    monkeypatch.setattr(framework, "TALLY_TIMEOUT", 0.3)


POSTED = {"u1": "d-1", "u2": "d-2", "u3": "d-3"}


def delivered(lab: FakeLab, posted=POSTED) -> None:
    for i, (uuid, msg) in enumerate(posted.items()):
        lab.deliver(uuid, msg, MESSAGES[i % 2])


def drill_run(controller: FakeController) -> DrillRun:
    run = DrillRun(controller, Report("test", "a drill under test"), out=lambda line: None)
    run.preflight()
    return run


def settled(run: DrillRun, posted=POSTED, **options) -> Report:
    run.loading = True
    run.settle(dict(posted), timeout=0.3, **options)
    return run.report


# --- reading ---------------------------------------------------------------------------------------


def test_every_copy_and_the_facade_are_read_with_the_text_each_lists(lab):
    fake, controller = lab
    delivered(fake)
    delivery = read_delivery(controller, POSTED, facade=controller.url("facade-1"))
    assert set(delivery.logging) == set(LOGGING) and set(delivery.messages) == set(MESSAGES)
    assert all(held.texts == {u: (m,) for u, m in POSTED.items()} for held in delivery.logging.values())
    assert delivery.messages["messages-1"].texts == {"u1": ("d-1",), "u3": ("d-3",)}
    assert delivery.facade.asked == "messages-1"
    assert delivery.facade.received_by == {"u1": "messages-1", "u2": None, "u3": "messages-1"}
    assert delivery.complete(POSTED) and delivery.received_once(POSTED) == 3


def test_a_copy_that_does_not_answer_is_named_and_a_skipped_one_is_not_read(lab):
    fake, controller = lab
    delivered(fake)
    fake.failing = {"logging-3", "messages-2"}
    delivery = read_delivery(controller, POSTED, skip=["logging-2"])
    assert delivery.unreadable == ("logging-3", "messages-2") and set(delivery.logging) == {"logging-1"}
    assert not delivery.complete(POSTED)


def test_logged_texts_finds_failed_posts_in_any_logging_copy_and_none_when_none_answers(lab):
    fake, controller = lab
    fake.logged["logging-2"].append(("f1", "d-9"))  # only one copy serves it: found all the same
    fake.log("other", "d-10")
    assert logged_texts(controller, ["d-9", "d-11"]) == {"f1": "d-9"}
    fake.failing = set(LOGGING)
    assert logged_texts(controller, ["d-9"]) is None


# --- the checks on what was read -------------------------------------------------------------------


def held(**texts: str | tuple[str, ...]) -> Held:
    return Held({u: (m,) if isinstance(m, str) else m for u, m in texts.items()})


def delivery_of(logging: dict[str, Held] | None = None, messages: dict[str, Held] | None = None,
                facade: FacadeRead | None = None) -> Delivery:
    everything = held(u1="d-1", u2="d-2", u3="d-3")
    return Delivery(logging if logging is not None else dict.fromkeys(LOGGING, everything),
                    messages if messages is not None else {"messages-1": held(u1="d-1", u3="d-3"),
                                                           "messages-2": held(u2="d-2")},
                    facade)


def test_lost_is_missing_from_every_logging_copy_or_from_every_messages_copy():
    assert delivery_of().lost(POSTED) == []
    no_u2 = held(u1="d-1", u3="d-3")
    assert delivery_of(logging=dict.fromkeys(LOGGING, no_u2)).lost(POSTED) == ["u2"]
    assert delivery_of(messages={"messages-1": no_u2}).lost(POSTED) == ["u2"]
    assert delivery_of(logging={}).lost(POSTED) == []  # no logging copy read: the map tells nothing


def test_a_logging_copy_or_the_facade_lacking_what_the_map_holds_is_short_not_lost():
    everything, no_u2 = held(u1="d-1", u2="d-2", u3="d-3"), held(u1="d-1", u3="d-3")
    one_short = delivery_of(logging={"logging-1": everything, "logging-2": everything, "logging-3": no_u2})
    assert one_short.lost(POSTED) == [] and one_short.short(POSTED) == {"logging-3": ["u2"]}
    assert not one_short.complete(POSTED)
    facade_short = delivery_of(facade=FacadeRead(no_u2, {}, "messages-1"))
    assert facade_short.short(POSTED) == {FACADE: ["u2"]} and not facade_short.complete(POSTED)


def test_a_message_listed_with_another_text_is_named_with_every_reader_that_lists_it_so():
    assert delivery_of().with_other_text(POSTED) == {}
    altered = delivery_of(messages={"messages-1": held(u1="d-1", u3="other"), "messages-2": held(u2="d-2")},
                          facade=FacadeRead(held(u1="d-1", u2="d-2!", u3="d-3"), {}, "messages-1"))
    assert altered.with_other_text(POSTED) == {"messages-1": ["u3"], FACADE: ["u2"]}
    assert altered.received_once(POSTED) == 2
    assert altered.lost(POSTED) == []  # there, but not as posted: its own verdict


def test_a_message_listed_twice_by_one_reader_or_by_two_messages_copies_is_duplicated():
    assert delivery_of().duplicated(POSTED) == []
    twice_in_a_copy = delivery_of(logging={"logging-1": held(u1=("d-1", "d-1"), u2="d-2", u3="d-3")})
    assert twice_in_a_copy.duplicated(POSTED) == ["u1"]
    by_two = delivery_of(messages={"messages-1": held(u1="d-1", u3="d-3"), "messages-2": held(u1="d-1", u2="d-2")})
    assert by_two.duplicated(POSTED) == ["u1"] and by_two.received_once(POSTED) == 2


def test_the_merged_view_must_mark_what_the_copy_it_asked_lists_and_nothing_else():
    right = FacadeRead(held(u1="d-1", u2="d-2", u3="d-3"), {"u1": "messages-1", "u2": None, "u3": "messages-1"},
                       "messages-1")
    assert delivery_of(facade=right).misattributed(POSTED) == []
    unmarked = FacadeRead(right.merged, {"u1": "messages-1", "u2": None, "u3": None}, "messages-1")
    assert delivery_of(facade=unmarked).misattributed(POSTED) == ["u3"]
    wrongly_marked = FacadeRead(right.merged, {"u1": "messages-1", "u2": "messages-1", "u3": "messages-1"},
                                "messages-1")
    assert delivery_of(facade=wrongly_marked).misattributed(POSTED) == ["u2"]
    without_messages = FacadeRead(right.merged, dict.fromkeys(POSTED), None, "no messages copy answered")
    assert not delivery_of(facade=without_messages).complete(POSTED)


def counts(received: int, unanswered: int = 0) -> ConsumerCounts:
    return ConsumerCounts(received, received, 1, 0, 0, 0, unanswered)


def test_a_copy_must_list_what_it_counts_as_recorded_give_or_take_its_unanswered_writes():
    assert tally_problem("messages-1", Tally(counts(5), 5)) is None
    assert tally_problem("messages-1", Tally(counts(5, unanswered=1), 6)) is None  # a write that landed unseen
    assert "written over" in tally_problem("messages-1", Tally(counts(5), 4))
    assert "without counting" in tally_problem("messages-1", Tally(counts(5), 6))
    assert Tally(counts(7), 9) - Tally(counts(2), 3) == Tally(ConsumerCounts(5, 5, 0, 0, 0, 0, 0), 6)


# --- settling: the drill's verdict -----------------------------------------------------------------


def test_a_lab_that_kept_the_promise_passes_and_every_reader_shows_in_the_table(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    report = settled(run)
    assert report.verdict == "PASS", report.to_text()
    assert report.value_of("GET /logging of logging-3") == "3/3"
    assert report.value_of("GET /facade (merged)") == "3/3"
    assert report.value_of("GET /messages of messages-2") == 1
    assert report.value_of("received once, posted text") == "3/3"
    assert report.value_of("messages-1 counts: received, dropped, redelivered") == "2, 0, 0"
    assert report.settled == POSTED


def test_one_logging_copy_serving_another_text_fails_the_drill(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.logged["logging-3"][1] = ("u2", "d-2 altered")
    report = settled(run)
    assert report.wrong_text == ["d-2:u2"] and not report.lost
    assert "logging-3 lists 1 with another text" in report.problems
    assert report.verdict.startswith("FAIL - 1 with another text")


def test_a_logging_copy_lacking_a_message_fails_the_drill_though_the_first_copy_has_it(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    del fake.logged["logging-2"][0]
    report = settled(run)
    assert report.problems == ["logging-2 lacks 1 that the map holds"] and not report.lost


def test_a_received_message_stored_with_another_text_fails_the_drill(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.received["messages-2"][0] = ("u2", "not what was posted")
    report = settled(run)
    assert report.wrong_text == ["d-2:u2"]
    assert report.value_of("received once, posted text") == "2/3"


def test_the_facades_merged_view_is_checked_for_what_it_lists_and_marks(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.merged_override = [{"uuid": "u1", "msg": "d-1", "received_by": None},  # messages-1 lists it
                            {"uuid": "u3", "msg": "d-3", "received_by": "messages-1"}]
    report = settled(run)
    assert f"{FACADE} lacks 1 that the map holds" in report.problems
    assert f"{FACADE} marks 1 as received by a copy that does not list them" in report.problems


def test_a_message_in_no_messages_copy_is_lost(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake, {"u1": "d-1", "u2": "d-2"})
    fake.log("u3", "d-3")  # logged, never received
    report = settled(run)
    assert report.lost == ["d-3:u3"]


def test_a_failed_post_logged_anyway_must_be_received_and_one_never_logged_is_not_looked_for(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.log("f1", "d-4")  # answered 503 after logging: delivered by redelivery, or not
    run.failed = [Outcome("d-4", 0, 1.0, 503), Outcome("d-5", 0, 1.0, 503)]
    report = settled(run)
    assert report.value_of("failed POSTs logged anyway") == 1
    assert report.lost == ["d-4:f1"]
    fake.record("f1", "d-4", "messages-2")
    passed = settled(drill_run(controller), failed=run.failed)
    assert passed.verdict == "PASS", passed.to_text()
    assert passed.settled == {**POSTED, "f1": "d-4"}


def test_a_message_recorded_by_two_copies_fails_the_drill_though_each_listing_shows_it_once(lab):
    # the second copy's record wrote over the first's (put instead of put_if_absent): the received map,
    # keyed by uuid, lists it once, under messages-2; messages-1 counted it too
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.received["messages-1"].remove(("u3", "d-3"))
    fake.record("u3", "d-3", "messages-2")
    report = settled(run)
    assert report.duplicated == [] and report.lost == []
    assert any(p.startswith("messages-1 recorded 2 but the received map credits it with 1") for p in report.problems)


def judged(run: DrillRun, posted=POSTED) -> Report:
    settled(run, posted)
    run.judge_journals()
    return run.report


def test_every_message_journaled_once_passes_and_the_journals_are_read_page_by_page(lab):
    fake, controller = lab
    delivered(fake, {**POSTED, "u4": "d-4", "u5": "d-5", "u6": "d-6"})  # three entries each: two pages
    report = judged(drill_run(controller), {**POSTED, "u4": "d-4", "u5": "d-5", "u6": "d-6"})
    assert report.verdict == "PASS", report.to_text()
    assert report.value_of("journaled by some copy (read after the drill)") == "6/6"


def test_a_message_two_copies_journaled_fails_the_drill_and_is_named_though_every_listing_shows_it_once(lab):
    # what a split-brain heal leaves: the received map kept messages-1's record, messages-2 processed it too
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.journal("u1", "messages-2")
    report = judged(run)
    assert report.duplicated == [] and report.lost == []
    assert report.processed_twice == ["d-1:u1 by messages-1 (batch b0), messages-2 (batch b1)"]
    assert report.verdict.startswith("FAIL - 1 processed twice"), report.verdict
    assert "processed twice: d-1:u1 by messages-1" in report.to_text()


def test_a_message_one_copy_journaled_twice_fails_the_drill(lab):
    # a copy that processed it, died before its commit, and processed it again after its restart
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.journal("u2", "messages-2")
    assert judged(run).processed_twice == ["d-2:u2 by messages-2 (batch b0), messages-2 (batch b1)"]


def test_a_journal_that_cannot_be_read_fails_the_drill_and_other_drills_messages_are_not_counted(lab):
    fake, controller = lab
    run = drill_run(controller)
    delivered(fake)
    fake.journal("earlier", "messages-1")
    fake.journal("earlier", "messages-2")  # processed twice, but not a message of this drill
    assert judged(run).verdict == "PASS"
    fake.failing = {"messages-2"}
    run = DrillRun(controller, Report("test", "a drill under test"), out=lambda line: None)
    run.report.settled = dict(POSTED)
    run.judge_journals()
    assert run.report.problems == ["could not read the journal of messages-2"]


def test_counts_are_compared_over_the_drill_only(lab):
    fake, controller = lab
    fake.deliver("old", "before the drill", "messages-1")
    fake.counts["messages-1"]["received"] += 5  # and records of messages since gone with an earlier cluster
    run = drill_run(controller)
    delivered(fake)
    assert settled(run).verdict == "PASS"


def test_a_copy_killed_during_the_load_is_not_compared_and_one_stopped_before_counts_from_zero(lab):
    fake, controller = lab
    fake.deliver("old", "before the drill", "messages-2")
    run = drill_run(controller)
    run.stop("messages-2")  # before any load: its next process counts from zero
    run.down.remove("messages-2")  # started again (the fake's start only takes note)
    fake.counts["messages-2"] = dict.fromkeys(COUNTED, 0)
    run.loading = True
    run.kill("messages-1")
    run.down.remove("messages-1")
    fake.counts["messages-1"] = dict.fromkeys(COUNTED, 0)  # its new process recorded none of them
    delivered(fake)
    report = settled(run)
    assert report.value_of("messages-1 counts: received, dropped, redelivered") == \
        "not compared (killed during the load)"
    assert report.value_of("messages-2 counts: received, dropped, redelivered") == "1, 0, 0"
    assert report.verdict == "PASS", report.to_text()


def test_after_the_whole_cluster_is_lost_counts_are_compared_only_once_counting_begins_again(lab):
    fake, controller = lab
    run = drill_run(controller)
    run.kill(*controller.names("member"))
    run.down.clear()
    fake.counts["messages-1"]["received"] += 20  # records gone with the cluster
    assert settled(run, {}).verdict == "PASS"
    assert run.report.value_of("messages-1 counts: received, dropped, redelivered") == \
        "not compared (the received map was lost with the cluster)"
    run.recount()
    delivered(fake)
    assert settled(run).verdict == "PASS"
    fake.counts["messages-2"]["received"] += 1
    assert not settled(run).passed
