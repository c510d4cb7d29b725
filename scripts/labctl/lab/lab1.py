"""Lab 1: the basic microservices. One facade, one logging copy keeping messages in its own memory, a messages
stub answering "not implemented yet"; Task 1's request shapes, retries, dedup by uuid; `--grpc`: the facade
logs over gRPC."""

from __future__ import annotations

import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from labctl.lab import actions
from labctl.lab.framework import Lab, Result, Step, Table
from labctl.lab.runner import LabRun
from labctl.launcher import Topology

GREETINGS = ["Hello", "Its me", "Привіт"]
DUPLICATE = {"id": "1111-2222-3333", "txt": "Duplicate test"}
RETRIED = "test retry"
RETRY_WINDOW = 30  # Prefer: wait=N, seconds the facade keeps trying logging
DOWN_FOR = 2.0  # seconds logging stays stopped while the POST waits


def post_greetings(run: LabRun) -> Result:
    return actions.post_messages(run, GREETINGS, field="txt", path="/")


def read_both(run: LabRun) -> Result:
    body = run.get_json(run.facade + "/facade")
    logged = [m["msg"] for m in body["logging"]["messages"]]
    stub = body["messages"]
    stub_says = stub.get("message") or stub.get("error") or ""
    run.expect(logged == GREETINGS and stub.get("status") == "not implemented yet", "expect.stub_merged",
               f"logging {logged}, messages {stub}")
    rows = [("logging-service", body["logging"].get("copy"), ", ".join(logged)),
            ("messages-service", stub.get("copy"), stub_says)]
    return Result(Table((run.t("col.service"), run.t("col.copy"), run.t("col.answer")), rows),
                  {"count": len(logged), "stub": stub_says})


def dedup(run: LabRun) -> Result:
    url = run.url("logging-1") + "/logging"
    rows = []
    for attempt in (1, 2, 3):
        response = run.post(url, DUPLICATE)
        rows.append((attempt, response.status_code, response.json().get("status")))
    stored = [m for m in run.get_json(url)["messages"] if m["uuid"] == DUPLICATE["id"]]
    codes = [r[1] for r in rows]
    run.expect(codes == [201, 200, 200] and len(stored) == 1, "expect.dedup",
               run.t("seen.dedup", codes=codes, stored=len(stored)))
    return Result(Table((run.t("col.post_number"), run.t("col.status"), run.t("col.answer")), rows),
                  {"uuid": DUPLICATE["id"], "stored": len(stored)})


def retry(run: LabRun) -> Result:
    before = run.get_json(run.url("logging-1") + "/logging")["count"]
    run.stop("logging-1")
    answer: dict = {}

    def patient_post() -> None:
        began = time.monotonic()
        response = run.post(run.facade + "/", {"txt": RETRIED}, headers={"Prefer": f"wait={RETRY_WINDOW}"},
                            timeout=RETRY_WINDOW + 10)
        answer.update(status=response.status_code, seconds=time.monotonic() - began)

    waiting = threading.Thread(target=patient_post, daemon=True)
    waiting.start()
    time.sleep(DOWN_FOR)
    run.start("logging-1")
    waiting.join(RETRY_WINDOW + 15)
    listing = run.get_json(run.url("logging-1") + "/logging")["messages"]
    stored = [m for m in listing if m["msg"] == RETRIED]
    run.expect(answer.get("status") == 201 and len(stored) == 1, "expect.retried_once",
               run.t("seen.retried", status=answer.get("status"), stored=len(stored)))
    rows = [(RETRIED, answer["status"], f"{answer['seconds']:.1f}", len(stored))]
    return Result(Table((run.t("col.message"), run.t("col.status"), run.t("col.seconds"), run.t("col.stored")), rows),
                  {"seconds": f"{answer['seconds']:.1f}", "before": before, "after": len(listing),
                   "window": RETRY_WINDOW})


def grpc_calls(run: LabRun) -> Result:
    text = run.get(run.url("logging-1") + "/metrics").text
    rows = [(s.labels.get("method", "").rsplit("/", 1)[-1], s.labels.get("code"), int(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "lab_grpc_requests_total"]
    ok = sum(n for _, code, n in rows if code == "OK")
    run.expect(ok >= len(GREETINGS) + 1, "expect.grpc", str(rows), count=len(GREETINGS) + 1)
    return Result(Table((run.t("col.method"), run.t("col.code"), run.t("col.count")), rows), {"ok": ok})


def _topology(transport: str):
    return lambda offset: Topology(port_offset=offset, cluster_name="lab1", members=0, logging=1, messages=1,
                                   messages_stub=True, queue="none", logging_store="memory", transport=transport)


START = "labctl start --members 0 --logging 1 --messages 1 --logging-store memory --messages-stub --queue none"
STEPS = (
    Step("start", START, actions.system_table),
    Step("post", 'curl -X POST -d "txt=Hello" {facade}; curl -X POST -d "txt=Its me" {facade}; '
                 'curl -X POST -d "txt=Привіт" {facade}', post_greetings),
    Step("read", "curl {facade}/facade", read_both, screenshot=True),
    Step("dedup", 'curl -X POST -d "id=1111-2222-3333&txt=Duplicate test" {logging1}/logging   # ×3', dedup),
    Step("retry", lambda run: run.labctl("stop logging-1") + f"; curl -X POST -H 'Prefer: wait={RETRY_WINDOW}' "
         f'-d "txt={RETRIED}" {run.facade} & sleep 2; ' + run.labctl("start-process logging-1"), retry,
         screenshot=True, fault=True),
)
LAB = Lab(1, None, _topology("http"), STEPS)
GRPC = Lab(1, "grpc", _topology("grpc"),
           (Step("start", START + " --transport grpc", actions.system_table), *STEPS[1:],
            Step("grpc", "curl -s {logging1}/metrics | grep lab_grpc_requests_total", grpc_calls)))
