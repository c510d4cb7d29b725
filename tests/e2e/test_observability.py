"""The status page as a person sees it (Debian's chromium, headless, renders it), and a real Prometheus
scraping every service copy and member."""

import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import eventually, port_offset, rendered, started_system

pytestmark = pytest.mark.e2e

CREATED = {"route": "/facade", "method": "POST", "status": "201"}
PORT_OFFSET = port_offset(14_500)  # members on 20201-20203, their metrics on 24201-24203, Prometheus on 23590


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("observability"), "obs", port_offset=PORT_OFFSET,
                        prometheus=True) as system:
        yield system


def rows(dom: str, prefix: str) -> dict[str, str]:
    """id -> data-state of the page's table rows whose id starts with `prefix`."""
    return dict(re.findall(rf'<tr id="{prefix}([^"]+)" data-state="(up|down)"', dom))


def test_the_page_lists_the_three_members_and_every_copy_up(system):
    facade = system.url("facade-1")
    for i in range(3):
        assert requests.post(facade + "/facade", data={"msg": f"seen {i}"}, timeout=10).status_code == 201
    dom = rendered(facade + "/status")
    members = rows(dom, "member-")
    assert sorted(members) == [f"127.0.0.1:{5700 + i + PORT_OFFSET}" for i in (1, 2, 3)]
    assert set(members.values()) == {"up"}
    copies = rows(dom, "copy-")
    assert {name: state for name, state in copies.items() if name.startswith(("logging", "messages"))} == \
        {"logging-1": "up", "logging-2": "up", "logging-3": "up", "messages-1": "up", "messages-2": "up"}
    assert "seen 2" in dom  # the last messages, newest first


def test_a_killed_member_turns_down_on_the_page_and_up_again_when_restarted(system):
    status_url = system.url("facade-1") + "/status"
    member_2 = f"127.0.0.1:{5702 + PORT_OFFSET}"
    system.kill("member-2")
    try:
        eventually(lambda: rows(rendered(status_url), "member-")[member_2] == "down", timeout=20, interval=0.5)
    finally:
        system.start_process("member-2")
    eventually(lambda: rows(rendered(status_url), "member-")[member_2] == "up", timeout=30, interval=0.5)


def test_prometheus_scrapes_every_target_and_counts_what_was_posted(system):
    prometheus = system.url("prometheus")
    facade = system.url("facade-1")

    def all_up():
        targets = requests.get(prometheus + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        jobs = sorted(t["labels"]["job"] for t in targets)
        assert jobs == ["config-server", "facade", "logging", "logging", "logging", "members", "members", "members",
                        "messages", "messages"], jobs
        assert all(t["health"] == "up" for t in targets), [(t["scrapeUrl"], t["lastError"]) for t in targets]

    eventually(all_up, timeout=40, interval=1)
    query = 'sum(lab_http_requests_total{job="facade",route="/facade",method="POST",status="201"})'

    def counted() -> float:
        result = requests.get(prometheus + "/api/v1/query", params={"query": query}, timeout=5).json()
        found = result["data"]["result"]
        return float(found[0]["value"][1]) if found else 0.0

    def in_the_facade() -> float:
        text = requests.get(facade + "/metrics", timeout=5).text
        return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                   if s.name == "lab_http_requests_total" and s.labels == CREATED)

    posted = 7
    for i in range(posted):
        assert requests.post(facade + "/facade", data={"msg": f"counted {i}"}, timeout=10).status_code == 201
    expected = in_the_facade()
    assert expected >= posted
    eventually(lambda: counted() == expected, timeout=30, interval=1)
