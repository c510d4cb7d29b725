import subprocess
import sys
from pathlib import Path

import pytest

from config_server.settings import ConfigServerSettings
from facade_service.settings import FacadeSettings
from lab_common.cluster import ClusterConnection
from lab_common.contracts import QUORUM
from lab_common.settings import ServiceSettings, SettingsError, configurable_fields, settings_table
from labctl.launcher import Topology, plan, topology
from labctl.launcher.topology import CONSISTENCIES
from logging_service.settings import LoggingSettings
from messages_service.settings import MessagesSettings

SETTINGS_DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
# (service, its package, default port, its settings)
SERVICES = [
    ("facade-service", "facade_service", 8080, FacadeSettings),
    ("logging-service", "logging_service", 8081, LoggingSettings),
    ("messages-service", "messages_service", 8082, MessagesSettings),
    ("config-server", "config_server", 8888, ConfigServerSettings),
]


def test_flags_override_the_environment():
    settings = LoggingSettings.load("logging-service", default_port=8081,
                                    environ={"LAB_PORT": "9000", "HZ_MEMBERS": "h:1"}, argv=["--port", "9001"])
    assert settings.port == 9001
    assert settings.hz_members == ("h:1",)
    assert settings.instance == "logging-9001"


def test_every_invalid_value_is_named_at_once():
    with pytest.raises(SettingsError) as err:
        MessagesSettings.load("x", default_port=1, environ={"LAB_PORT": "nope", "HZ_INVOCATION_TIMEOUT": "-1",
                                                             "HZ_MEMBERS": "no-port", "LAB_CONSUMER_BATCH": "0"},
                              argv=[])
    message = str(err.value)
    assert all(name in message for name in ("LAB_PORT", "HZ_INVOCATION_TIMEOUT", "HZ_MEMBERS", "LAB_CONSUMER_BATCH"))


def test_a_retry_window_is_zero_or_more_seconds():
    settings = FacadeSettings.load("facade-service", default_port=8080,
                                   environ={"LAB_RETRY_WINDOW": "0", "LAB_RETRY_WINDOW_MAX": "12.5"}, argv=[])
    assert (settings.retry_window, settings.retry_window_max) == (0.0, 12.5)
    with pytest.raises(SettingsError) as err:
        FacadeSettings.load("facade-service", default_port=8080,
                            environ={"LAB_RETRY_WINDOW": "-1", "LAB_RETRY_WINDOW_MAX": "nan"}, argv=[])
    assert "LAB_RETRY_WINDOW=" in str(err.value) and "LAB_RETRY_WINDOW_MAX=" in str(err.value)


def test_hazelcast_timeouts_are_the_documented_seconds():
    settings = LoggingSettings.load("x", default_port=1, environ={}, argv=[])
    assert (settings.hz_invocation_timeout, settings.hz_connect_timeout) == (5.0, 5.0)


def test_the_promised_timeouts_are_the_defaults_the_launched_services_run_with(tmp_path, monkeypatch):
    """README, "No request hangs": 2 s per outgoing HTTP call, 3 attempts, 5 s per Hazelcast operation. The
    running system's behaviour with them: tests/e2e/test_promise.py."""
    facade = FacadeSettings.load("facade-service", default_port=8080, environ={}, argv=[])
    assert (facade.http_timeout, facade.http_attempts) == (2.0, 3)
    for cls in (FacadeSettings, LoggingSettings, MessagesSettings):
        settings = cls.load("x", default_port=1, environ={}, argv=[])
        assert settings.hz_invocation_timeout == 5.0
        assert ClusterConnection(settings)._client_config()["invocation_timeout"] == 5.0
        # an operation on a hung member is given up by the bound before the client's heartbeat closes its
        # connection, at least a second later (the last read may be up to a heartbeat interval old)
        heartbeat = ClusterConnection(settings)._client_config()
        assert heartbeat["heartbeat_timeout"] - heartbeat["heartbeat_interval"] >= settings.hz_invocation_timeout + 1
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))
    timeouts = {"LAB_HTTP_TIMEOUT", "LAB_HTTP_ATTEMPTS", "HZ_INVOCATION_TIMEOUT"}
    assert {name: set(p.env) & timeouts for name, p in plan(Topology(), tmp_path, "run").items()
            if set(p.env) & timeouts} == {}, "the launcher must leave the documented defaults alone"


def test_each_service_reads_only_its_own_settings():
    names = {service: {f.name for f in configurable_fields(cls)} for service, _, _, cls in SERVICES}
    common = {f.name for f in configurable_fields(ServiceSettings)}
    assert names["config-server"] == common | {"registry_file"}
    assert names["logging-service"] - common == {"hz_cluster_name", "hz_members", "hz_connect_timeout",
                                                 "hz_invocation_timeout", "logging_map", "grpc_port",
                                                 "logging_store", "hz_consistency"}
    assert "hz_consistency" in names["messages-service"] and "hz_consistency" not in names["facade-service"]
    assert "messages_stub" in names["messages-service"] - names["logging-service"] - names["facade-service"]
    assert "hazelcast" in names["facade-service"] - names["logging-service"] - names["messages-service"]
    assert {"received_map", "consumer_batch", "consumer_threads", "logging_map"} <= names["messages-service"]
    assert {"http_timeout", "http_attempts", "config_server", "discovery_ttl", "messages_queue",
            "logging_map", "received_map", "logging_transport"} <= names["facade-service"]  # maps: status page
    assert not names["facade-service"] & {"consumer_batch", "consumer_threads", "registry_file", "grpc_port"}
    assert "logging_transport" not in names["logging-service"] | names["messages-service"]
    channel = {"queue", "kafka_bootstrap", "kafka_topic", "kafka_timeout"}  # the two ends of facade -> messages
    assert channel | {"kafka_group"} <= names["facade-service"]  # the group: its progress on the status page
    assert channel | {"kafka_group"} <= names["messages-service"]
    assert not (channel | {"kafka_group"}) & names["logging-service"]


def test_the_queue_is_hazelcast_or_kafka_and_the_brokers_a_list_of_host_port():
    settings = MessagesSettings.load("messages-service", default_port=8082, argv=[], environ={
        "LAB_QUEUE": "kafka", "LAB_KAFKA_BOOTSTRAP": "127.0.0.1:9092,127.0.0.1:9094"})
    assert (settings.queue, settings.kafka_bootstrap) == ("kafka", ("127.0.0.1:9092", "127.0.0.1:9094"))
    assert FacadeSettings.load("facade-service", default_port=8080, environ={}, argv=[]).queue == "hazelcast"
    with pytest.raises(SettingsError) as err:
        FacadeSettings.load("facade-service", default_port=8080, argv=[],
                            environ={"LAB_QUEUE": "rabbitmq", "LAB_KAFKA_BOOTSTRAP": "nohost",
                                     "LAB_KAFKA_TIMEOUT": "0"})
    assert all(name in str(err.value) for name in ("LAB_QUEUE", "LAB_KAFKA_BOOTSTRAP", "LAB_KAFKA_TIMEOUT"))


def test_a_flag_of_another_service_is_refused():
    with pytest.raises(SystemExit):
        LoggingSettings.load("logging-service", default_port=8081, environ={}, argv=["--consumer-batch", "5"])


def test_help_lists_only_what_the_service_reads():
    out = subprocess.run([sys.executable, "-m", "logging_service", "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "--logging-map" in out and "--hz-members" in out
    assert "--consumer-batch" not in out and "--http-timeout" not in out and "--registry-file" not in out


def settings_doc() -> str:
    """docs/settings.md as the settings dataclasses define it."""
    parts = [
        "# Settings\n\n",
        "Generated from the settings dataclasses (`python -m tests.unit.test_settings` writes it; a unit test\n",
        "checks it is up to date). Every setting is read from its environment variable or its flag; the flag\n",
        "wins. All invalid values are reported at once, at start. In Consul mode the Hazelcast cluster name and\n",
        "members and the object names come from Consul KV instead (`lab/hazelcast/cluster-name`,\n",
        "`lab/hazelcast/members`, `lab/names/logging-map`, `lab/names/messages-queue`, `lab/names/received-map`).\n",
    ]
    for service, package, port, cls in SERVICES:
        parts.append(f"\n## {service}: `python -m {package}` (`{cls.__module__}.{cls.__name__}`)\n\n")
        parts.append(settings_table(cls, service, port))
    parts.append(system_settings())
    return "".join(parts)


def system_settings() -> str:
    """The settings of the whole system the launcher starts, which no one service reads."""
    default = Topology().consistency
    modes = ", ".join(f"`{mode}`" for mode in CONSISTENCIES)
    return (
        "\n## The whole system: `labctl start` / `labctl run` (`labctl.launcher.topology.Topology`)\n\n"
        "| setting | labctl flag | make | default | meaning |\n|---|---|---|---|---|\n"
        f"| `consistency` | `--consistency` | `CONSISTENCY` | `{default}` | {modes}: available takes writes while one "
        f"member is left; quorum makes the members refuse writes (a `503` `unavailable`, `reason` `no_quorum`) "
        f"unless {QUORUM} of them are in touch ([why](fault-tolerance.md#the-consistency-choice)) |\n\n"
        "Each member gets it as `-Dlab.consistency=<mode>`, the split-brain protection of that name in\n"
        "`hazelcast/member.yaml` that every map and queue refers to, and each messages copy gets it as\n"
        "`HZ_CONSISTENCY`; the launcher keeps it in `state.json`\n"
        "(`topology.consistency`) and `labctl status` prints it. Docker Compose and `deploy/k8s` run available mode.\n"
    )


def test_the_settings_doc_is_up_to_date():
    assert SETTINGS_DOC.read_text(encoding="utf-8") == settings_doc(), \
        "docs/settings.md is stale: run python -m tests.unit.test_settings"


def test_only_the_facade_takes_queue_none_and_it_may_go_without_hazelcast_only_without_the_clusters_queue():
    facade = FacadeSettings.load("facade-service", default_port=8080, argv=[],
                                 environ={"LAB_QUEUE": "none", "LAB_HAZELCAST": "false"})
    assert (facade.queue, facade.hazelcast) == ("none", False)
    with pytest.raises(SettingsError, match="LAB_QUEUE"):
        MessagesSettings.load("messages-service", default_port=8082, argv=[], environ={"LAB_QUEUE": "none"})
    with pytest.raises(SettingsError, match="LAB_HAZELCAST=false needs LAB_QUEUE none or kafka"):
        FacadeSettings.load("facade-service", default_port=8080, argv=[], environ={"LAB_HAZELCAST": "false"})


def test_the_logging_store_is_hazelcast_or_memory_and_the_stub_a_boolean():
    assert LoggingSettings.load("logging-service", default_port=8081, argv=["--logging-store", "memory"],
                                environ={}).logging_store == "memory"
    assert MessagesSettings.load("messages-service", default_port=8082, argv=[],
                                 environ={"LAB_MESSAGES_STUB": "true"}).messages_stub
    with pytest.raises(SettingsError) as err:
        LoggingSettings.load("logging-service", default_port=8081, argv=[], environ={"LAB_LOGGING_STORE": "redis"})
    assert "LAB_LOGGING_STORE='redis': must be one of hazelcast, memory" in str(err.value)


if __name__ == "__main__":
    SETTINGS_DOC.write_text(settings_doc(), encoding="utf-8")

