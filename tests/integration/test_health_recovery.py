"""Health follows the cluster: 503 while no member is up, 200 again when one returns, no restarts."""

import uuid

import pytest
import requests

from scripts.launcher import System, Topology
from tests.helpers import eventually, port_offset

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_system(tmp_path_factory):
    system = System(tmp_path_factory.mktemp("health"))
    system.start(Topology(cluster_name=f"health-{uuid.uuid4().hex[:8]}", members=1, logging=1, messages=1,
                          facades=0, port_offset=port_offset(10_100)), timeout=120)
    yield system
    system.stop()


def status(url: str) -> int:
    return requests.get(url + "/health", timeout=3).status_code


def test_health_turns_503_without_members_and_200_when_they_return(small_system):
    logging_url, messages_url = small_system.url("logging-1"), small_system.url("messages-1")
    pids = {name: small_system.process(name).pid for name in ("logging-1", "messages-1")}
    assert status(logging_url) == status(messages_url) == 200

    small_system.kill("member-1")
    eventually(lambda: status(logging_url) == 503 and status(messages_url) == 503, timeout=30)

    # answered, not hung (a hang ends in ReadTimeout); how fast is the drills' and the bench's business
    response = requests.post(logging_url + "/logging", json={"uuid": "u1", "msg": "m"}, timeout=30)
    assert response.status_code == 503 and response.json()["error"] == "unavailable"

    small_system.start_process("member-1")
    eventually(lambda: status(logging_url) == 200 and status(messages_url) == 200, timeout=60)
    response = requests.post(logging_url + "/logging", json={"uuid": "u1", "msg": "m"}, timeout=10)
    assert response.status_code == 201
    assert {name: small_system.process(name).pid for name in pids} == pids, "services were not restarted"
