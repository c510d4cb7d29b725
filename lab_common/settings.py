"""Settings of a service copy: one frozen dataclass, read once in `main` from the environment and flags.

Every field names its environment variable and command-line flag; flags win over the environment.
Invalid values are all reported at once, before anything starts.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab_common import contracts


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message names every one."""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("must be a port number 1-65535")
    return value


def _address_list(text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise ValueError("must list at least one host:port")
    for item in items:
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{item!r} is not host:port")
    return items


def _choice(*choices: str) -> Callable[[str], str]:
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


def _setting(default: Any, env: str, flag: str, parse: Callable[[str], Any], help: str):
    return field(default=default, metadata={"env": env, "flag": flag, "parse": parse, "help": help})


@dataclass(frozen=True)
class Settings:
    service: str = "service"
    instance: str = _setting("", "LAB_INSTANCE", "--instance", str, "name of this copy, e.g. logging-2")
    host: str = _setting("127.0.0.1", "LAB_HOST", "--host", str, "address to listen on")
    port: int = _setting(0, "LAB_PORT", "--port", _port, "port to listen on")
    server: str = _setting(
        "granian", "LAB_SERVER", "--server", _choice("granian", "gunicorn", "dev"),
        "granian (HTTP parsed in Rust, WSGI threads), gunicorn (gthread workers) or dev (Flask's server)",
    )
    threads: int = _setting(8, "LAB_THREADS", "--threads", _positive_int, "request threads")
    log_level: str = _setting("INFO", "LAB_LOG_LEVEL", "--log-level", str.upper, "log level")
    max_body_bytes: int = _setting(
        64 * 1024, "LAB_MAX_BODY_BYTES", "--max-body-bytes", _positive_int, "largest request body accepted"
    )

    hz_cluster_name: str = _setting("lab", "HZ_CLUSTER_NAME", "--hz-cluster-name", str, "Hazelcast cluster name")
    hz_members: tuple[str, ...] = _setting(
        ("127.0.0.1:5701", "127.0.0.1:5702", "127.0.0.1:5703"), "HZ_MEMBERS", "--hz-members",
        _address_list, "Hazelcast members host:port,...; the first is this copy's preferred member",
    )
    hz_connect_timeout: float = _setting(
        5.0, "HZ_CONNECT_TIMEOUT", "--hz-connect-timeout", _positive_float,
        "seconds to (re)connect to the cluster before the client gives up and starts over",
    )
    hz_invocation_timeout: float = _setting(
        5.0, "HZ_INVOCATION_TIMEOUT", "--hz-invocation-timeout", _positive_float,
        "seconds one Hazelcast operation may take",
    )
    logging_map: str = _setting(
        contracts.LOGGING_MAP, "LAB_LOGGING_MAP", "--logging-map", str, "the logging service's map of logged messages"
    )
    messages_queue: str = _setting(
        contracts.MESSAGES_QUEUE, "LAB_MESSAGES_QUEUE", "--messages-queue", str, "the queue facade -> messages"
    )
    received_map: str = _setting(
        contracts.RECEIVED_MAP, "LAB_RECEIVED_MAP", "--received-map", str, "what each messages copy received"
    )
    consumer_batch: int = _setting(
        50, "LAB_CONSUMER_BATCH", "--consumer-batch", _positive_int, "queue items per consumer transaction"
    )
    consumer_threads: int = _setting(
        1, "LAB_CONSUMER_THREADS", "--consumer-threads", _positive_int,
        "consumer threads, each with its own transactions (more take smaller batches and cost more CPU)"
    )

    discovery: str = _setting(
        "config-server", "LAB_DISCOVERY", "--discovery", _choice("config-server", "consul"),
        "where service addresses come from",
    )
    config_server: str = _setting(
        "http://127.0.0.1:8888", "LAB_CONFIG_SERVER", "--config-server", str, "config server base URL"
    )
    discovery_ttl: float = _setting(
        5.0, "LAB_DISCOVERY_TTL", "--discovery-ttl", _positive_float, "seconds addresses stay cached"
    )
    consul: str = _setting("127.0.0.1:8500", "LAB_CONSUL", "--consul", str, "Consul agent host:port")
    registry_file: str = _setting(
        "", "LAB_REGISTRY_FILE", "--registry-file", str, "config server: JSON file of service addresses"
    )
    http_timeout: float = _setting(
        2.0, "LAB_HTTP_TIMEOUT", "--http-timeout", _positive_float, "seconds per outgoing HTTP call"
    )
    http_attempts: int = _setting(
        3, "LAB_HTTP_ATTEMPTS", "--http-attempts", _positive_int, "tries per outgoing call, across copies"
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
    ) -> Settings:
        """Defaults, then the environment, then flags; raises SettingsError naming every bad value."""
        parser = argparse.ArgumentParser(
            prog=f"python -m {service.replace('-', '_')}", description=f"Run one copy of {service}."
        )
        configurable = [f for f in dataclasses.fields(cls) if "env" in f.metadata]
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
