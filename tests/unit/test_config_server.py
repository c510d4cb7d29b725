import json

import pytest

from config_server.app import DEFAULT_REGISTRY, create_app, load_registry


@pytest.fixture
def client(settings):
    return create_app(settings, registry=load_registry(DEFAULT_REGISTRY)).test_client()


def test_known_service_answers_its_addresses(client):
    body = client.get("/services/logging-service").json
    assert body["addresses"] == ["http://127.0.0.1:8081", "http://127.0.0.1:8083", "http://127.0.0.1:8085"]


def test_unknown_service_is_a_json_404_listing_the_known_ones(client):
    response = client.get("/services/nope")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert "logging-service" in response.json["known"]


def test_malformed_registry_file_is_refused(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"logging-service": "http://x"}))
    with pytest.raises(ValueError):
        load_registry(path)
