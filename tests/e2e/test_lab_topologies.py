"""The lab's earlier systems started by the launcher, real processes: Task 1 (a facade, one logging copy on its
in-memory store, the messages stub, no queue, no members; over HTTP and over gRPC) and Task 3 (three members,
three logging copies, the config server, a facade that only logs), each with the lab's own protocol."""

import re

import pytest
import requests

from tests.helpers import port_offset, rendered, started_system

pytestmark = pytest.mark.e2e

PORT_OFFSET = port_offset(7_000)  # members on 12701-12703, services on 15080-15085, gRPC on 57051: one at a time
TASK_1 = dict(members=0, logging=1, messages=1, logging_store="memory", messages_stub=True, queue="none")
TASK_3 = dict(members=3, logging=3, messages=0, queue="none")
TIMEOUT = 10


def post(url: str, **fields) -> requests.Response:
    return requests.post(url, data=fields, timeout=TIMEOUT)


def logged_msgs(facade: str) -> list[str]:
    answer = requests.get(facade + "/facade", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return [m["msg"] for m in answer.json()["merged"]]


def dedup_protocol(logging: str) -> None:
    """The lab's: the same id posted to logging three times is one entry, answered 201 then 200 twice."""
    answers = [post(logging + "/logging", id="1111-2222-3333", txt="Duplicate test") for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
    listing = requests.get(logging + "/logging", timeout=TIMEOUT).json()
    assert [m["uuid"] for m in listing["messages"]].count("1111-2222-3333") == 1


class Task1:
    """The checks of Task 1's system, over the transport of the subclass's fixture."""

    def test_a_post_is_acknowledged_and_listed_by_the_get(self, system):
        facade = system.url("facade-1")
        for text in ("Hello", "Its me", "Den4ik"):
            answer = post(facade + "/", txt=text)  # the lab's shape: txt on /
            assert answer.status_code == 201 and answer.json()["logged_by"] == "logging-1", answer.text
        assert logged_msgs(facade)[-3:] == ["Hello", "Its me", "Den4ik"]

    def test_the_same_id_posted_three_times_to_logging_is_one_entry(self, system):
        dedup_protocol(system.url("logging-1"))
        assert logged_msgs(system.url("facade-1")).count("Duplicate test") == 1

    def test_the_messages_stub_says_not_implemented_yet_and_the_facades_get_passes_that_on(self, system):
        stub = requests.get(system.url("messages-1") + "/messages", timeout=TIMEOUT)
        assert stub.status_code == 200
        assert stub.json()["status"] == "not implemented yet"
        assert stub.json()["message"] == "Message-service not implemented yet"
        assert requests.get(system.url("messages-1") + "/health", timeout=TIMEOUT).status_code == 200
        assert requests.get(system.url("facade-1") + "/facade", timeout=TIMEOUT).json()["messages"]["status"] \
            == "not implemented yet"


class TestTask1OverHttp(Task1):
    @pytest.fixture(scope="class")
    @classmethod
    def system(cls, tmp_path_factory):
        with started_system(tmp_path_factory.mktemp("task1"), "task1", port_offset=PORT_OFFSET, **TASK_1) as system:
            yield system

    def test_the_status_page_shows_no_cluster_no_queue_and_the_three_copies_up(self, system):
        facade = system.url("facade-1")
        post(facade + "/facade", msg="on the page")
        dom = rendered(facade + "/status")
        assert '<section id="members-section" hidden="">' in dom
        assert "offers it to no queue" in dom
        copies = dict(re.findall(r'<tr id="copy-([^"]+)" data-state="(up|down)"', dom))
        assert {name: copies.get(name) for name in ("facade-1", "logging-1", "messages-1")} == \
            {"facade-1": "up", "logging-1": "up", "messages-1": "up"}
        assert "on the page" in dom


class TestTask1OverGrpc(Task1):
    @pytest.fixture(scope="class")
    @classmethod
    def system(cls, tmp_path_factory):
        with started_system(tmp_path_factory.mktemp("task1-grpc"), "task1g", port_offset=PORT_OFFSET,
                            transport="grpc", **TASK_1) as system:
            yield system

    def test_the_facades_posts_went_over_grpc(self, system):
        post(system.url("facade-1") + "/facade", msg="over gRPC")
        metrics = requests.get(system.url("logging-1") + "/metrics", timeout=TIMEOUT).text
        assert re.search(r'lab_grpc_requests_total\{[^}]*code="OK"[^}]*\} [1-9]', metrics), metrics[:2000]


class TestTask3:
    @pytest.fixture(scope="class")
    @classmethod
    def system(cls, tmp_path_factory):
        with started_system(tmp_path_factory.mktemp("task3"), "task3", port_offset=PORT_OFFSET, **TASK_3) as system:
            yield system

    def test_msg1_to_msg10_are_logged_across_the_copies_and_stay_readable_as_copies_die_with_their_members(
            self, system):
        facade = system.url("facade-1")
        by_copy = [post(facade + "/facade", msg=f"msg{i}").json()["logged_by"] for i in range(1, 11)]
        assert set(by_copy) <= {"logging-1", "logging-2", "logging-3"}
        expected = [f"msg{i}" for i in range(1, 11)]
        assert logged_msgs(facade) == expected
        system.wait_cluster_safe(3)
        for i in (1, 2):  # one copy with its member, then a second
            system.kill(f"logging-{i}")
            system.kill(f"member-{i}")
            system.wait_cluster_safe(3 - i)
            assert logged_msgs(facade) == expected, f"after logging-{i} and member-{i} were killed"
        assert post(facade + "/facade", msg="msg11").status_code == 201  # the last copy takes new ones

    def test_the_get_answers_the_log_and_says_there_is_no_messages_service(self, system):
        answer = requests.get(system.url("facade-1") + "/facade", timeout=TIMEOUT)
        assert answer.status_code == 200
        assert answer.json()["messages"]["copy"] is None
        assert "messages-service" in answer.json()["messages"]["error"]

    def test_the_same_id_posted_three_times_to_logging_is_one_entry_in_the_map(self, system):
        dedup_protocol(system.url("logging-3"))
