"""While the cluster is away every service answers 503 at once (health, reads and writes, in the documented
shape); when a member returns they recover by themselves, no restarts."""


import pytest
import requests

from tests.helpers import eventually, port_offset, started_system

pytestmark = pytest.mark.integration

ANSWERED_WITHIN = 30.0  # "answered, not hung" (a hang ends in ReadTimeout)
AT_ONCE = 2.0  # "503 at once": each answer while the cluster is away comes under this (one 2 s timeout waited: fails)


@pytest.fixture(scope="module")
def small_system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("health"), "health", members=1, logging=1, messages=1, facades=1,
                        port_offset=port_offset(10_100)) as system:
        yield system


def status(url: str) -> int:
    return requests.get(url + "/health", timeout=3).status_code


def timed(method: str, url: str, **kwargs) -> requests.Response:
    """The answer, checked to come at once (`elapsed`: from sending the request to its answer's headers)."""
    response = requests.request(method, url, timeout=ANSWERED_WITHIN, **kwargs)
    assert response.elapsed.total_seconds() < AT_ONCE, f"{method} {url} answered in {response.elapsed}: not at once"
    return response


def assert_unavailable(response: requests.Response) -> None:
    """The documented 503: JSON {"error": "unavailable", "message": ...}."""
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "unavailable" and body["message"]


def test_without_members_health_reads_and_writes_answer_503_and_all_recover_without_restarts(small_system):
    copies = ("logging-1", "messages-1", "facade-1")
    url = {name: small_system.url(name) for name in copies}
    pids = {name: small_system.process(name).pid for name in copies}
    assert [status(url[name]) for name in copies] == [200, 200, 200]

    small_system.kill("member-1")
    eventually(lambda: [status(url[name]) for name in copies] == [503, 503, 503], timeout=30)
    assert [timed("GET", url[name] + "/health").status_code for name in copies] == [503, 503, 503]

    facade, logging, messages = url["facade-1"], url["logging-1"], url["messages-1"]
    for method, address, body in [
        ("POST", logging + "/logging", {"uuid": "u1", "msg": "m"}),
        ("GET", logging + "/logging", None),
        ("GET", logging + "/logging?limit=5", None),
        ("GET", messages + "/messages", None),
        ("POST", facade + "/facade", {"msg": "m"}),
        ("GET", facade + "/facade", None),
        ("GET", facade + "/facade?limit=5", None),
    ]:
        assert_unavailable(timed(method, address, json=body))

    small_system.start_process("member-1")
    eventually(lambda: [status(url[name]) for name in copies] == [200, 200, 200], timeout=60)
    assert requests.post(logging + "/logging", json={"uuid": "u1", "msg": "m"}, timeout=10).status_code == 201
    posted = requests.post(facade + "/facade", json={"msg": "after the cluster came back"}, timeout=10)
    assert posted.status_code == 201
    assert requests.get(messages + "/messages", timeout=10).status_code == 200

    def read_back():
        merged = requests.get(facade + "/facade", timeout=10).json()["merged"]
        assert [m["received_by"] for m in merged if m["uuid"] == posted.json()["uuid"]] == ["messages-1"]
    eventually(read_back, timeout=30)
    assert {name: small_system.process(name).pid for name in copies} == pids, "services were restarted"
