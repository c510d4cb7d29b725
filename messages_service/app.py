"""messages-service's HTTP face: GET /messages answers what this copy received (never clears it), GET
/messages/journal its own journal of what it processed."""

from __future__ import annotations

from flask import Flask

from lab_common.cluster import ClusterConnection
from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import add_health, after_param, create_base_app, limit_param, listing_response
from messages_service.api import openapi
from messages_service.consumer import QueueConsumer
from messages_service.redelivery import Redelivery
from messages_service.service import Inbox, Journal
from messages_service.settings import MessagesSettings

JOURNAL_PAGE = 1000  # entries per page when only `after` is given


def create_app(settings: ServiceSettings, *, inbox: Inbox, journal: Journal, health_checks=None) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, health_checks or {})
    add_openapi(app, openapi())

    @app.get("/messages")
    def get_messages():
        return listing_response({"copy": settings.instance}, [inbox.received_as_json(settings.instance)])

    @app.get("/messages/journal")
    def get_journal():
        limit = limit_param(default=None)
        after = after_param("the 'next' value of the previous page (entries skipped)")
        if limit is None and after is None:
            return listing_response({"copy": settings.instance}, journal.pages(), key="entries")
        limit, after = limit or JOURNAL_PAGE, after or 0
        page = journal.page(after, limit)
        return listing_response({"copy": settings.instance, "next": str(after + len(page)) if len(page) >= limit
                                 else None}, [page], key="entries")

    return app


def build(settings: MessagesSettings):
    """The real wiring: cluster connection, the adapters of the channel (Hazelcast's queue, or a Kafka topic),
    the consumer and redelivery threads; as the lab's Task 1 stub, none of them."""
    if settings.messages_stub:
        from messages_service.stub import create_stub_app

        return create_stub_app(settings), lambda: None
    from messages_service.journal_file import FileJournal

    journal = FileJournal(settings.journal_path)
    # Quorum mode: a record (or a redelivery's offer) that every backup has not confirmed is not made, and the
    # batch goes back to the queue. A member cut off from the others takes writes until it has missed their
    # heartbeats for 3 s; its backups never confirm them, so nothing it records in that window counts, and
    # the other side processes the message once (docs/fault-tolerance.md, "The consistency choice").
    connection = ClusterConnection(settings, confirmed_writes=settings.hz_consistency == "quorum")
    checks = connection.health_checks()
    closers = []
    if settings.queue == "kafka":
        inbox, port = _kafka_adapters(settings, connection, checks, closers)
    else:
        from messages_service.adapters import HazelcastInbox, HazelcastRedelivery

        inbox = HazelcastInbox(connection, settings.messages_queue, settings.received_map)
        port = HazelcastRedelivery(connection, settings.messages_queue, settings.received_map, settings.logging_map)
    redelivery = Redelivery(port)
    connection.on_membership(redelivery.membership_changed)
    connection.start()
    consumer = QueueConsumer(inbox, settings.instance, journal=journal, batch=settings.consumer_batch,
                             threads=settings.consumer_threads).start()
    redelivery.start()
    checks |= {"consumer": consumer.health, "redelivery": redelivery.health}

    def close():
        redelivery.stop()
        consumer.stop()
        for close_one in closers:
            close_one()
        connection.close()
        journal.close()

    return create_app(settings, inbox=inbox, journal=journal, health_checks=checks), close


def _kafka_adapters(settings: MessagesSettings, connection: ClusterConnection, checks: dict, closers: list):
    """The inbox and redelivery port on the Kafka topic; adds the brokers' and the group's /health checks and
    what to close (the consumers first: they leave the group at once)."""
    from lab_common.kafka import (
        AcknowledgedProducer,
        broker_check,
        client_config,
        inspector,
        metadata_client,
        producer_config,
    )
    from messages_service.adapters import ReceivedMap
    from messages_service.kafka_adapters import KafkaInbox, KafkaRedelivery, consumer_config

    producer = AcknowledgedProducer(producer_config(settings), timeout=settings.kafka_timeout)
    group_reader = inspector(settings, settings.kafka_group)
    inbox = KafkaInbox(consumer_config(client_config(settings), settings.kafka_group), settings.kafka_topic,
                       ReceivedMap(connection, settings.received_map))
    port = KafkaRedelivery(connection, producer, group_reader, settings.kafka_topic, settings.received_map,
                           settings.logging_map)
    checks["kafka"] = broker_check(metadata_client(settings), settings.kafka_topic)
    checks["consumer-group"] = inbox.health
    closers.extend([inbox.close, producer.close, group_reader.close])
    return inbox, port
