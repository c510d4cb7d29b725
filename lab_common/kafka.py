"""What the services share in Kafka mode (docs/kafka.md): the client settings, a producer whose sends return once
the brokers acknowledged them, and /health's look at the brokers. The client is confluent-kafka (librdkafka)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from lab_common.errors import Unavailable
from lab_common.settings import QueueSettings

log = logging.getLogger(__name__)

ACK_MARGIN = 1.0  # seconds a send waits for its delivery report past the producer's own message timeout
HEALTH_TIMEOUT = 1.0  # seconds /health waits for a broker's metadata answer
POLL_SECONDS = 0.1  # how often the producer's thread serves delivery reports when there are none


def client_config(settings: QueueSettings, **extra: Any) -> dict[str, Any]:
    """What every client of this copy shares: where the brokers are, its name, and librdkafka's log in ours."""
    return {"bootstrap.servers": ",".join(settings.kafka_bootstrap), "client.id": settings.instance,
            "logger": logging.getLogger("librdkafka"), **extra}


def producer_config(settings: QueueSettings) -> dict[str, Any]:
    """Idempotent (a retry inside the client never writes twice), every in-sync replica acknowledges, and a
    message the brokers have not acknowledged after `kafka_timeout` seconds is reported as failed."""
    timeout_ms = int(settings.kafka_timeout * 1000)
    return client_config(settings, **{
        "enable.idempotence": True, "acks": "all", "linger.ms": 1,
        "message.timeout.ms": timeout_ms, "request.timeout.ms": timeout_ms,
    })


def inspector_config(base: dict[str, Any], group: str) -> dict[str, Any]:
    """A consumer that reads the group's committed offsets, the partitions' ends and single messages: it never
    subscribes (so it never joins the group) and never commits (a messages copy's redelivery, the facade's
    status page)."""
    return {**base, "group.id": group, "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": False}


def inspector(settings: QueueSettings, group: str):
    """A consumer of `inspector_config` for this copy: the group's offsets and the partitions' ends."""
    return confluent_kafka.Consumer(inspector_config(client_config(settings), group))


class AcknowledgedProducer:
    """A producer whose `send` returns once every message was acknowledged by the brokers (acks=all), and
    raises Unavailable otherwise. A thread of its own serves the delivery reports; request threads wait on
    theirs. A fatal error (the idempotent producer cannot go on) makes it start over with a new producer."""

    def __init__(self, config: dict[str, Any], *, timeout: float,
                 factory: Callable[[dict[str, Any]], Any] = confluent_kafka.Producer):
        self._config = config
        self._timeout = timeout
        self._factory = factory
        self._producer = factory(config)
        self._lock = threading.Lock()
        self._fatal: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve_reports, name="kafka-producer", daemon=True)
        self._thread.start()

    def send(self, topic: str, messages: Sequence[tuple[str, str]]) -> None:
        """Produce every (key, value) and wait until all are acknowledged; Unavailable names what failed."""
        producer = self._current()
        remaining = len(messages)
        errors: list[str] = []
        done = threading.Condition()

        def report(err, _message) -> None:
            nonlocal remaining
            with done:
                remaining -= 1
                if err is not None:
                    errors.append(err.str())
                    if err.fatal():
                        self._fatal = err.str()
                done.notify_all()

        for key, value in messages:
            try:
                producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=report)
            except (BufferError, KafkaException) as err:  # the client's own queue is full, or it is failing
                raise Unavailable(f"cannot produce to {topic}: {type(err).__name__}: {err}") from err
        deadline = time.monotonic() + self._timeout + ACK_MARGIN
        with done:
            while remaining and done.wait(max(0.0, deadline - time.monotonic())):
                pass
            failed, unreported = list(errors), remaining
        if failed:
            raise Unavailable(f"{len(failed)} of {len(messages)} message(s) not acknowledged by the brokers: "
                              + "; ".join(sorted(set(failed))))
        if unreported:  # the client's own timeout should have reported them: they may still land
            raise Unavailable(f"no acknowledgement from the brokers within {self._timeout + ACK_MARGIN:g}s")

    def _current(self):
        with self._lock:
            if self._fatal is not None:
                log.warning("the Kafka producer failed for good (%s): starting over with a new one", self._fatal)
                old, self._producer, self._fatal = self._producer, self._factory(self._config), None
                old.flush(0)
            return self._producer

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(POLL_SECONDS)
            except Exception:  # the loop must outlive any single failure
                log.exception("serving the Kafka producer's delivery reports failed")
                self._stop.wait(POLL_SECONDS)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is under way (up to `timeout` seconds), then stop serving reports."""
        self._producer.flush(timeout)
        self._stop.set()
        self._thread.join(timeout)


def metadata_client(settings: QueueSettings):
    """A client only for metadata requests (/health): no other thread polls it, so request threads may ask it
    at once (a call on a client another thread is polling can block). Its log goes to stderr, the copy's log."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": ",".join(settings.kafka_bootstrap), "client.id": settings.instance})


def broker_check(client, topic: str) -> Callable[[], tuple[bool, dict]]:
    """/health's check of the brokers: some broker answers a metadata request and knows the topic."""

    def check() -> tuple[bool, dict]:
        try:
            metadata = client.list_topics(topic, timeout=HEALTH_TIMEOUT)
        except KafkaException as err:
            return False, {"state": f"no broker answers: {_reason(err)}"}
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            why = found.error.str() if found is not None and found.error is not None else "unknown"
            return False, {"state": f"topic {topic} not found: {why}", "brokers": len(metadata.brokers)}
        return True, {"state": "reachable", "brokers": len(metadata.brokers), "topic": topic,
                      "partitions": len(found.partitions)}

    return check


def _reason(err: KafkaException) -> str:
    error = err.args[0] if err.args else None
    return error.str() if isinstance(error, KafkaError) else str(err)
