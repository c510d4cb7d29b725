"""messages-service's HTTP face: GET /messages answers what this copy received (never clears it)."""

from __future__ import annotations

from flask import Flask

from lab_common.cluster import ClusterConnection
from lab_common.openapi import add_openapi
from lab_common.settings import ServiceSettings
from lab_common.web import add_health, create_base_app, listing_response
from messages_service.api import openapi
from messages_service.consumer import QueueConsumer
from messages_service.redelivery import Redelivery
from messages_service.service import Inbox
from messages_service.settings import MessagesSettings


def create_app(settings: ServiceSettings, *, inbox: Inbox, health_checks=None) -> Flask:
    app = create_base_app(__name__, settings)
    add_health(app, settings, health_checks or {})
    add_openapi(app, openapi())

    @app.get("/messages")
    def get_messages():
        return listing_response({"copy": settings.instance}, [inbox.received_as_json(settings.instance)])

    return app


def build(settings: MessagesSettings):
    """The real wiring: cluster connection, the Hazelcast adapters, the consumer and redelivery threads."""
    from messages_service.adapters import HazelcastInbox, HazelcastRedelivery

    connection = ClusterConnection(settings)
    redelivery = Redelivery(HazelcastRedelivery(connection, settings.messages_queue, settings.received_map,
                                                settings.logging_map))
    connection.on_membership(redelivery.membership_changed)
    connection.start()
    inbox = HazelcastInbox(connection, settings.messages_queue, settings.received_map)
    consumer = QueueConsumer(inbox, settings.instance, batch=settings.consumer_batch,
                             threads=settings.consumer_threads).start()
    redelivery.start()
    checks = {
        "hazelcast": lambda: (connection.connected, connection.status),
        "consumer": consumer.health,
        "redelivery": redelivery.health,
    }

    def close():
        redelivery.stop()
        consumer.stop()
        connection.close()

    return create_app(settings, inbox=inbox, health_checks=checks), close
