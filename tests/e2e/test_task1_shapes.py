"""Task 1's client calls as its report made them, against the whole system: curl with `txt` on the facade's
root, the dedup protocol (the same `id`/`txt` form posted three times straight to logging), requests.post
with form data, and requests.get on each messages copy."""

import shutil
import subprocess
import uuid

import pytest
import requests

from tests.helpers import eventually, port_offset, started_system

pytestmark = pytest.mark.e2e

# members on 23201-23203, their metrics on 27201-27203, the facade on 25580, the config server on 26388
PORT_OFFSET = port_offset(17_500)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with started_system(tmp_path_factory.mktemp("task1"), "task1", port_offset=PORT_OFFSET) as system:
        yield system


def curl(*args: str) -> tuple[int, str]:
    """curl as the report ran it; answers the HTTP status and the body."""
    assert shutil.which("curl"), "no curl on this machine: `make test` installs it (python -m labctl.deps curl)"
    done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                          timeout=60, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_curl_posts_txt_to_the_facades_root_and_reads_it_back_there(system):
    facade = system.url("facade-1")
    status, body = curl("-X", "POST", "-d", "txt=Hello", facade)
    assert status == 201, body
    posted = requests.post(facade, data={"txt": "Its me"}, timeout=30)
    assert posted.status_code == 201, posted.text

    def both_read_back():
        status, body = curl(facade)
        assert status == 200 and '"msg":"Hello"' in body and '"msg":"Its me"' in body, body
    eventually(both_read_back, timeout=30)


def test_the_dedup_protocol_stores_the_id_once_and_answers_each_post_without_an_error(system):
    logging = system.url("logging-1")
    answers = [curl("-X", "POST", "-d", "id=1111-2222-3333&txt=Duplicate test", logging + "/logging")
               for _ in range(3)]
    assert [status for status, _ in answers] == [201, 200, 200], answers
    again = requests.post(system.url("logging-2") + "/logging", data={"id": "1111-2222-3333", "txt": "Duplicate test"},
                          timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    listing = requests.get(system.url("logging-3") + "/logging", timeout=30).json()
    assert [m["msg"] for m in listing["messages"] if m["uuid"] == "1111-2222-3333"] == ["Duplicate test"]


def test_requests_posts_form_data_to_the_facade_and_each_messages_copy_answers_a_get(system):
    facade = system.url("facade-1")
    text = f"Den4ik {uuid.uuid4().hex[:6]}"
    posted = requests.post(facade + "/facade", data={"msg": text}, timeout=30)
    assert posted.status_code == 201, posted.text
    copies = [system.url(name) for name in system.names("messages")]

    def received_once_across_the_copies():
        listings = [requests.get(copy + "/messages", timeout=30) for copy in copies]
        assert all(listing.status_code == 200 for listing in listings)
        texts = [m["msg"] for listing in listings for m in listing.json()["messages"]]
        assert texts.count(text) == 1, texts
    eventually(received_once_across_the_copies, timeout=30)
