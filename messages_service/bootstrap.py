"""messages-service's composition root: the channel's adapters chosen from the settings (a table of
factories: the cluster's queue, or a Kafka topic), the cluster connection, the consumer and redelivery
threads, behind the routes (app.py); as the lab's Task 1 stub, none of them. Built in the server's worker,
after the fork (lab_common.service_main)."""

from __future__ import annotations

from collections.abc import Callable

from lab_common import hazelcast_fixes
from lab_common.cluster import ClusterConnection
from lab_common.discovery_factory import findable
from messages_service.app import create_app
from messages_service.consumer import QueueConsumer
from messages_service.redelivery import Redelivery
from messages_service.service import Inbox, RedeliveryPort
from messages_service.settings import MessagesSettings

Channel = Callable[[MessagesSettings, ClusterConnection, dict, list], "tuple[Inbox, RedeliveryPort]"]


def hazelcast_channel(settings: MessagesSettings, connection: ClusterConnection, checks: dict, closers: list):
    """The inbox and redelivery port on the cluster's queue."""
    from messages_service.adapters.hazelcast import HazelcastInbox, HazelcastRedelivery

    return (HazelcastInbox(connection, settings.messages_queue, settings.received_map),
            HazelcastRedelivery(connection, settings.messages_queue, settings.received_map, settings.logging_map))


def kafka_channel(settings: MessagesSettings, connection: ClusterConnection, checks: dict, closers: list):
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
    from messages_service.adapters.hazelcast import ReceivedMap
    from messages_service.adapters.kafka import KafkaInbox, KafkaRedelivery, consumer_config

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


CHANNELS: dict[str, Channel] = {"hazelcast": hazelcast_channel, "kafka": kafka_channel}


@findable
def build(settings: MessagesSettings):
    """The app and its close()."""
    if settings.messages_stub:
        from messages_service.stub import create_stub_app

        return create_stub_app(settings), lambda: None
    from messages_service.adapters.journal_file import FileJournal

    journal = FileJournal(settings.journal_path)
    # Quorum mode: a record (or a redelivery's offer) that every backup has not confirmed is not made, and the
    # batch goes back to the queue. A member cut off from the others takes writes until it has missed their
    # heartbeats for 3 s; its backups never confirm them, so nothing it records in that window counts, and
    # the other side processes the message once (docs/fault-tolerance.md, "The consistency choice").
    hazelcast_fixes.apply()
    connection = ClusterConnection(settings, confirmed_writes=settings.hz_consistency == "quorum")
    checks = connection.health_checks()
    closers: list[Callable[[], None]] = []
    inbox, port = CHANNELS[settings.queue](settings, connection, checks, closers)
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
