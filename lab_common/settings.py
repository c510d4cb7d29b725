"""Settings of a service copy: frozen dataclasses, read once in `main` from the environment and flags.

`ServiceSettings` is what every service reads; `HazelcastSettings` and `CallerSettings` add what a service
with a cluster client, or one that calls other services, reads; each service's own class (its
`settings.py`) adds the rest, so its `--help` lists only what it reads. Every field names its environment
variable and command-line flag; flags win over the environment. Invalid values are all reported at once,
before anything starts.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from lab_common import contracts


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message names every one."""


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise ValueError("must be a number >= 0")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("must be a port number 1-65535")
    return value


def _port_or_off(text: str) -> int:
    return 0 if int(text) == 0 else _port(text)


def _address_list(text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise ValueError("must list at least one host:port")
    for item in items:
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{item!r} is not host:port")
    return items


def choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def setting(default: Any, env: str, flag: str, parse: Callable[[str], Any], help: str):
    return field(default=default, metadata={"env": env, "flag": flag, "parse": parse, "help": help})


def bool_setting(default: bool, env: str, flag: str, help: str):
    """A true/false setting: the flag takes a value too (`--messages-stub true`), as the environment does."""
    return setting(default, env, flag, _bool, help)


@dataclass(frozen=True)
class ServiceSettings:
    """What every service reads."""

    service: str = "service"
    instance: str = setting("", "LAB_INSTANCE", "--instance", str, "name of this copy, e.g. logging-2")
    host: str = setting("127.0.0.1", "LAB_HOST", "--host", str, "address to listen on")
    port: int = setting(0, "LAB_PORT", "--port", _port, "port to listen on")
    server: str = setting(
        "granian", "LAB_SERVER", "--server", choice("granian", "gunicorn", "dev"),
        "granian (HTTP parsed in Rust, WSGI threads), gunicorn (gthread workers) or dev (Flask's server)",
    )
    threads: int = setting(8, "LAB_THREADS", "--threads", positive_int, "request threads")
    log_level: str = setting("INFO", "LAB_LOG_LEVEL", "--log-level", str.upper, "log level")
    max_body_bytes: int = setting(
        64 * 1024, "LAB_MAX_BODY_BYTES", "--max-body-bytes", positive_int, "largest request body accepted"
    )
    discovery: str = setting(
        "config-server", "LAB_DISCOVERY", "--discovery", choice("config-server", "consul"),
        "where service addresses come from",
    )
    consul: str = setting("127.0.0.1:8500", "LAB_CONSUL", "--consul", str, "Consul agent host:port")
    advertise: str = setting(
        "", "LAB_ADVERTISE", "--advertise", str,
        "host others reach this copy at, as registered in Consul (default: the listen address; 127.0.0.1 for 0.0.0.0)",
    )
    metrics: bool = setting(
        True, "LAB_METRICS", "--metrics", _bool,
        "count requests, calls and operations and answer GET /metrics (false: neither, to measure their cost)",
    )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def load(
        cls,
        service: str,
        *,
        default_port: int,
        environ: Mapping[str, str],
        argv: Sequence[str] | None = None,
        **defaults: Any,
    ) -> Self:
        """Defaults, then the environment, then flags; raises SettingsError naming every bad value."""
        parser = argparse.ArgumentParser(
            prog=f"python -m {service.replace('-', '_')}", description=f"Run one copy of {service}."
        )
        configurable = configurable_fields(cls)
        for f in configurable:
            parser.add_argument(
                f.metadata["flag"], dest=f.name, default=None,
                help=f"{f.metadata['help']} (env {f.metadata['env']})",
            )
        args = parser.parse_args(argv)

        values: dict[str, Any] = {"service": service, "port": default_port, **defaults}
        errors = []
        for f in configurable:
            text = getattr(args, f.name)
            source = f.metadata["flag"]
            if text is None:
                text, source = environ.get(f.metadata["env"]), f.metadata["env"]
            if text is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](text)
            except ValueError as err:
                errors.append(f"{source}={text!r}: {err}")
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        settings = cls(**values)
        if not settings.instance:
            settings = dataclasses.replace(settings, instance=f"{service.removesuffix('-service')}-{settings.port}")
        return settings


@dataclass(frozen=True)
class HazelcastSettings(ServiceSettings):
    """A service with a Hazelcast client."""

    hz_cluster_name: str = setting("lab", "HZ_CLUSTER_NAME", "--hz-cluster-name", str, "Hazelcast cluster name")
    hz_members: tuple[str, ...] = setting(
        ("127.0.0.1:5701", "127.0.0.1:5702", "127.0.0.1:5703"), "HZ_MEMBERS", "--hz-members",
        _address_list, "Hazelcast members host:port,...; the first is this copy's preferred member",
    )
    hz_connect_timeout: float = setting(
        5.0, "HZ_CONNECT_TIMEOUT", "--hz-connect-timeout", positive_float,
        "seconds to (re)connect to the cluster before the client gives up and starts over",
    )
    hz_invocation_timeout: float = setting(
        5.0, "HZ_INVOCATION_TIMEOUT", "--hz-invocation-timeout", positive_float,
        "seconds one Hazelcast operation may take",
    )


@dataclass(frozen=True)
class GrpcServerSettings(ServiceSettings):
    """A service that can also answer over gRPC, beside HTTP."""

    grpc_port: int = setting(0, "LAB_GRPC_PORT", "--grpc-port", _port_or_off,
                             "also serve gRPC on this port, on the same host (0: no gRPC)")

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"


@dataclass(frozen=True)
class CallerSettings(ServiceSettings):
    """A service that calls other services: where it finds them and how it calls them."""

    config_server: str = setting(
        "http://127.0.0.1:8888", "LAB_CONFIG_SERVER", "--config-server", str, "config server base URL"
    )
    discovery_ttl: float = setting(
        5.0, "LAB_DISCOVERY_TTL", "--discovery-ttl", positive_float, "seconds addresses stay cached"
    )
    http_timeout: float = setting(
        2.0, "LAB_HTTP_TIMEOUT", "--http-timeout", positive_float,
        "seconds per outgoing call (HTTP, or a gRPC call's deadline)",
    )
    http_attempts: int = setting(
        3, "LAB_HTTP_ATTEMPTS", "--http-attempts", positive_int, "tries per outgoing call, across copies"
    )


def queue_setting(*more: str, more_help: str = ""):
    """The channel facade -> messages; `more`: choices only the facade takes (none)."""
    return setting(
        "hazelcast", "LAB_QUEUE", "--queue", choice(*contracts.QUEUES, *more),
        "the channel facade -> messages: hazelcast (the cluster's queue) or kafka (a topic on Kafka brokers)"
        + more_help,
    )


@dataclass(frozen=True)
class QueueSettings(ServiceSettings):
    """A service on the channel facade -> messages: the Hazelcast queue, or a Kafka topic (docs/kafka.md)."""

    queue: str = queue_setting()
    kafka_bootstrap: tuple[str, ...] = setting(
        ("127.0.0.1:9092",), "LAB_KAFKA_BOOTSTRAP", "--kafka-bootstrap", _address_list,
        "Kafka brokers host:port,... to start from (queue=kafka)",
    )
    kafka_topic: str = setting(contracts.MESSAGES_TOPIC, "LAB_KAFKA_TOPIC", "--kafka-topic", str,
                               "the topic facade -> messages (queue=kafka)")
    kafka_timeout: float = setting(
        5.0, "LAB_KAFKA_TIMEOUT", "--kafka-timeout", positive_float,
        "seconds a produce may take until the in-sync brokers have acknowledged it (queue=kafka)",
    )


# Settings that more than one service reads, each defined once.
def logging_map_setting():
    return setting(contracts.LOGGING_MAP, "LAB_LOGGING_MAP", "--logging-map", str,
                    "the logging service's map of logged messages")


def consistency_setting(what_fails: str):
    """The members' consistency mode, for a service whose writes must be on every backup in quorum mode."""
    return setting("available", "HZ_CONSISTENCY", "--hz-consistency", choice(*contracts.CONSISTENCIES),
                   "the members' consistency mode (labctl --consistency); quorum: a write the cluster has not "
                   f"copied to every backup within 1.5 s fails, and {what_fails}")


def received_map_setting():
    return setting(contracts.RECEIVED_MAP, "LAB_RECEIVED_MAP", "--received-map", str,
                   "what each messages copy received")


def messages_queue_setting():
    return setting(contracts.MESSAGES_QUEUE, "LAB_MESSAGES_QUEUE", "--messages-queue", str,
                    "the queue facade -> messages")


def configurable_fields(cls: type) -> list[dataclasses.Field]:
    """The fields that name an environment variable and a flag, in --help order."""
    return [f for f in dataclasses.fields(cls) if "env" in f.metadata]


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        value = ",".join(value)
    return f"`{value}`" if value != "" else "(none)"


def settings_table(cls: type[ServiceSettings], service: str, default_port: int) -> str:
    """A Markdown table of what a service reads: setting, env, flag, default, meaning."""
    rows = ["| setting | env | flag | default | meaning |", "|---|---|---|---|---|"]
    for f in configurable_fields(cls):
        default = {"port": f"`{default_port}`", "instance": f"`{service.removesuffix('-service')}-<port>`"}.get(
            f.name, _shown(f.default))
        meaning = f.metadata["help"].replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{f.metadata['env']}` | `{f.metadata['flag']}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"
