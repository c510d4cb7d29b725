import pytest

from lab_common.consul_support import KV_PREFIX, Registration, address_of, kv_defaults, seed_kv, settings_from_kv
from lab_common.settings import ServiceSettings, SettingsError
from logging_service.settings import LoggingSettings
from messages_service.settings import MessagesSettings


class FakeConsul:
    """Just enough of consul.Consul: a KV store and the agent's service registry."""

    class _KV:
        def __init__(self):
            self.data: dict[str, bytes] = {}

        def put(self, key, value):
            self.data[key] = value.encode()

        def get(self, key):
            return 1, ({"Key": key, "Value": self.data[key]} if key in self.data else None)

    class _Service:
        def __init__(self):
            self.registered: dict[str, dict] = {}

        def register(self, name, service_id, address, port, check, meta, tags=None):
            self.registered[service_id] = {"name": name, "address": address, "port": port, "check": check,
                                           "tags": tags or []}

        def deregister(self, service_id):
            self.registered.pop(service_id)

    def __init__(self):
        self.kv = self._KV()
        self.agent = type("Agent", (), {"service": self._Service()})()


def test_seeded_kv_settings_replace_the_defaults():
    fake = FakeConsul()
    source = MessagesSettings.load("x", default_port=1, environ={}, argv=[], hz_cluster_name="from-kv",
                                   hz_members=("127.0.0.1:6001", "127.0.0.1:6002"), messages_queue="q-kv",
                                   logging_map="log-kv")
    seed_kv(fake, kv_defaults(source))
    service = MessagesSettings.load("messages-service", default_port=8082, environ={}, argv=[])
    loaded = settings_from_kv(service, fake, wait=1)
    assert loaded.hz_cluster_name == "from-kv"
    assert loaded.hz_members == ("127.0.0.1:6001", "127.0.0.1:6002")
    assert loaded.messages_queue == "q-kv" and loaded.logging_map == "log-kv"
    assert fake.kv.data[KV_PREFIX + "hazelcast/members"] == b"127.0.0.1:6001,127.0.0.1:6002"
    assert fake.kv.data[KV_PREFIX + "names/logging-map"] == b"log-kv"


def test_a_service_takes_from_kv_only_the_settings_it_reads():
    fake = FakeConsul()
    seed_kv(fake, kv_defaults(MessagesSettings.load("x", default_port=1, environ={}, argv=[],
                                                    hz_cluster_name="from-kv", logging_map="log-kv")))
    loaded = settings_from_kv(LoggingSettings.load("logging-service", default_port=8081, environ={}, argv=[]),
                              fake, wait=1)
    assert isinstance(loaded, LoggingSettings)
    assert loaded.hz_cluster_name == "from-kv" and loaded.logging_map == "log-kv"


def test_missing_keys_are_waited_for_then_refused_by_name():
    naps = []
    with pytest.raises(SettingsError) as err:
        settings_from_kv(LoggingSettings.load("x", default_port=1, environ={}, argv=[]), FakeConsul(), wait=0,
                         sleep=naps.append)
    assert "lab/hazelcast/cluster-name" in str(err.value)


def test_a_copy_listening_everywhere_registers_the_address_it_is_told_to_advertise():
    """In containers a copy listens on 0.0.0.0 and others reach it by its service name."""
    fake = FakeConsul()
    for advertise, expected in (("", "127.0.0.1"), ("logging-2", "logging-2")):
        settings = ServiceSettings.load("logging-service", default_port=8083, argv=[], instance="logging-2",
                                        environ={"LAB_HOST": "0.0.0.0", "LAB_ADVERTISE": advertise})
        registration = Registration(settings, fake)
        registration.register()
        entry = fake.agent.service.registered[registration.service_id]
        assert entry["address"] == expected
        assert entry["check"]["http"] == f"http://{expected}:8083/health"


def test_registration_carries_an_http_check_on_health_and_is_undone():
    fake = FakeConsul()
    settings = ServiceSettings.load("logging-service", default_port=8083, environ={}, argv=[], instance="logging-2")
    registration = Registration(settings, fake)
    registration.register()
    entry = fake.agent.service.registered[registration.service_id]
    assert entry["port"] == 8083 and entry["name"] == "logging-service"
    assert entry["check"]["http"] == "http://127.0.0.1:8083/health" and entry["check"]["interval"] == "1s"
    registration.deregister()
    assert fake.agent.service.registered == {}


def test_a_copy_serving_grpc_is_also_registered_as_the_grpc_service_with_a_grpc_check_and_both_are_undone():
    fake = FakeConsul()
    settings = LoggingSettings.load("logging-service", default_port=8083, environ={}, argv=[], instance="logging-2",
                                    grpc_port=50053)
    registration = Registration(settings, fake)
    registration.register()
    assert set(fake.agent.service.registered) == set(registration.ids) and len(registration.ids) == 2
    grpc_entry = fake.agent.service.registered[registration.grpc_service_id]
    assert grpc_entry["name"] == "logging-service-grpc" and grpc_entry["port"] == 50053
    assert grpc_entry["tags"] == ["grpc"]
    assert grpc_entry["check"]["grpc"] == "127.0.0.1:50053" and grpc_entry["check"]["interval"] == "1s"
    registration.deregister()
    assert fake.agent.service.registered == {}


def test_a_copy_without_a_grpc_port_registers_its_http_service_only():
    fake = FakeConsul()
    Registration(LoggingSettings.load("logging-service", default_port=8081, environ={}, argv=[]), fake).register()
    assert [e["name"] for e in fake.agent.service.registered.values()] == ["logging-service"]


def test_discovery_answers_grpc_instances_as_host_port_targets_and_the_others_as_base_urls():
    assert address_of({"Address": "127.0.0.1", "Port": 50051, "Tags": ["grpc"]}) == "127.0.0.1:50051"
    assert address_of({"Address": "127.0.0.1", "Port": 8081, "Tags": []}) == "http://127.0.0.1:8081"
    assert address_of({"Address": "127.0.0.1", "Port": 8081}) == "http://127.0.0.1:8081"


def test_a_built_copy_is_registered_in_consul_mode_and_deregistered_before_it_closes(monkeypatch):
    import lab_common.consul_support
    from lab_common.discovery_factory import findable

    fake = FakeConsul()
    monkeypatch.setattr(lab_common.consul_support, "agent", lambda settings, timeout=2.0: fake)
    events = []

    @findable
    def build(settings):
        events.append("built")
        return "the app", lambda: events.append(("closed", sorted(fake.agent.service.registered)))

    def load(discovery):
        return ServiceSettings.load("logging-service", default_port=8083, argv=[], instance="logging-2",
                                    environ={"LAB_DISCOVERY": discovery})

    app, close = build(load("config-server"))  # the registry is a file: nothing registered
    close()
    assert app == "the app" and events == ["built", ("closed", [])]
    events.clear()
    app, close = build(load("consul"))
    assert app == "the app" and sorted(fake.agent.service.registered) == ["logging-service-logging-2-8083"]
    close()
    assert events == ["built", ("closed", [])]  # deregistered before the app closed


def test_a_service_settles_its_settings_from_kv_in_consul_mode_only(monkeypatch):
    import lab_common.consul_support
    from lab_common.discovery_factory import settled

    fake = FakeConsul()
    seed_kv(fake, kv_defaults(MessagesSettings.load("x", default_port=1, environ={}, argv=[],
                                                    hz_cluster_name="from-kv")))
    monkeypatch.setattr(lab_common.consul_support, "agent", lambda settings, timeout=2.0: fake)
    registry = LoggingSettings.load("logging-service", default_port=8081, environ={}, argv=[])
    assert settled(registry) is registry
    consul = LoggingSettings.load("logging-service", default_port=8081, environ={"LAB_DISCOVERY": "consul"}, argv=[])
    assert settled(consul).hz_cluster_name == "from-kv"
