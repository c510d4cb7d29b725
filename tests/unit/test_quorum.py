"""Quorum mode without a cluster: what the launcher gives the members, and how each service turns a write that
split-brain protection refused into a fast 503 that stores nothing."""

from __future__ import annotations

from pathlib import Path

import grpc
import orjson
import pytest
import yaml
from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import (
    HazelcastError,
    IndeterminateOperationStateError,
    SplitBrainProtectionError,
    TargetDisconnectedError,
)
from hazelcast.future import ImmediateExceptionFuture, ImmediateFuture

from facade_service.adapters.grpc import error_of
from facade_service.adapters.hazelcast import HazelcastQueue
from facade_service.adapters.http import LoggingClient
from facade_service.app import create_app as create_facade_app
from facade_service.service import Facade
from lab_common import cluster as cluster_module
from lab_common.cluster import BACKUP_ACK_TIMEOUT, ClusterConnection, QuorumWatch, add_index, refused_by_quorum
from lab_common.contracts import QUORUM, SEQ_INDEX, LoggedMessage, encode_queue_item
from lab_common.errors import NoQuorum, Unavailable
from lab_common.failover import CopyBreakers
from lab_common.grpc_support import status_of
from lab_common.http import HttpResponse, ServiceClient
from labctl.cli import build_parser, consistency_line
from labctl.deps import HAZELCAST_DIR
from labctl.launcher import LauncherError, State, System, Topology, kafka, plan, topology
from labctl.launcher.topology import CONSISTENCIES
from logging_service import bootstrap as logging_bootstrap
from logging_service.adapters.hazelcast import HazelcastMessageStore
from logging_service.app import create_app as create_logging_app
from logging_service.settings import LoggingSettings
from messages_service.adapters.hazelcast import HazelcastInbox
from messages_service.consumer import QueueConsumer
from messages_service.service import NotCommitted
from messages_service.settings import MessagesSettings
from tests.unit.fakes import (
    FakeClock,
    FakeDiscovery,
    FakeJournal,
    FakeLogging,
    FakeMessages,
    FakeMessageStore,
    FakeQueue,
)

REFUSAL = "Exception from server: com.hazelcast.splitbrainprotection.SplitBrainProtectionException"


@pytest.fixture(autouse=True)
def no_jar_download(monkeypatch):
    monkeypatch.setattr(topology, "ensure_member_jar", lambda: Path("/cache/hazelcast.jar"))
    monkeypatch.setattr(topology, "ensure_jmx_exporter_jar", lambda: Path("/cache/jmx_prometheus_javaagent.jar"))
    monkeypatch.setattr(kafka, "ensure_kafka_libs", lambda: Path("/cache/kafka"))


# --- the members' config ------------------------------------------------------------------------------------

def member_config() -> dict:
    return yaml.safe_load((HAZELCAST_DIR / "member.yaml").read_text())["hazelcast"]


@pytest.mark.parametrize("consistency", CONSISTENCIES)
def test_every_member_is_told_the_mode_which_names_the_protection_every_map_and_queue_refers_to(
        tmp_path, consistency):
    processes = plan(Topology(consistency=consistency), tmp_path, "run")
    for name in ("member-1", "member-2", "member-3"):
        assert f"-Dlab.consistency={consistency}" in processes[name].argv
    config = member_config()
    assert sorted(config["split-brain-protection"]) == sorted(CONSISTENCIES)
    for structure in ("map", "queue"):
        # "default" is the config of every name without one of its own: there is no other name in the file
        assert list(config[structure]) == ["default"]
        assert config[structure]["default"]["split-brain-protection-ref"] == "${lab.consistency}"


def test_quorum_refuses_writes_with_fewer_than_two_members_and_available_checks_nothing():
    protections = member_config()["split-brain-protection"]
    assert protections["quorum"]["minimum-cluster-size"] == QUORUM == 2
    assert protections["quorum"]["protect-on"] == "WRITE"
    # Hazelcast's parser rebuilds a recently-active protection enabled, whatever `enabled` says: the one
    # that is off must be a plain one
    assert protections["available"]["enabled"] is False
    assert set(protections["available"]) == {"enabled", "minimum-cluster-size"}


def test_the_heartbeat_tolerance_lies_between_two_heartbeats_and_the_time_a_member_is_dropped():
    """Hazelcast refuses to start outside [one heartbeat, max no heartbeat]; within it, missed heartbeats
    mean a cut."""
    config = member_config()
    tolerance = config["split-brain-protection"]["quorum"]["recently-active-split-brain-protection"][
        "heartbeat-tolerance-millis"]
    heartbeat = config["properties"]["hazelcast.heartbeat.interval.seconds"] * 1000
    dropped = config["properties"]["hazelcast.max.no.heartbeat.seconds"] * 1000
    assert 2 * heartbeat < tolerance < dropped


def test_the_mode_is_kept_in_the_state_file_and_an_older_state_file_reads_as_available(tmp_path):
    quorum = Topology(members=3, logging=0, messages=0, facades=0, consistency="quorum")
    state = State("run", quorum, plan(quorum, tmp_path, "run"))
    again = State.from_json(orjson.loads(orjson.dumps(state.to_json())))
    assert again.topology.consistency == "quorum" and again.topology.quorum
    older = state.to_json()
    del older["topology"]["consistency"]
    assert State.from_json(older).topology.consistency == "available"


def test_quorum_mode_with_one_member_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(LauncherError, match="at least 2 members"):
        System(tmp_path).start(Topology(members=1, consistency="quorum"))
    assert not (tmp_path / "state.json").exists()


def test_labctl_takes_the_mode_as_an_option_and_refuses_another_word(capsys):
    args = build_parser().parse_args(["start", "--consistency", "quorum"])
    assert args.consistency == "quorum"
    assert build_parser().parse_args(["run"]).consistency == "available"
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["start", "--consistency", "strong"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_status_line_names_the_mode():
    assert consistency_line(Topology(consistency="quorum")).startswith("consistency: quorum")
    assert consistency_line(Topology()).startswith("consistency: available")


# --- the error mapping ----------------------------------------------------------------------------------------

class FakeConnection:
    """A ClusterConnection's error mapping and quorum watch over one fake proxy or client; its cluster goes on
    refusing writes (every probe is refused)."""

    def __init__(self, proxy=None, client=None):
        self.quorum = QuorumWatch(self._refused_probe)
        self._proxy = proxy
        self._client = client
        self.started_over: list[str] = []

    unavailable = ClusterConnection.unavailable  # the real mapping of the client's errors

    def proxy(self, kind, name, *, blocking=True):
        return self._proxy

    def client(self):
        return self._client

    def start_over(self, why: str) -> None:
        self.started_over.append(why)

    @staticmethod
    def _refused_probe() -> None:
        raise SplitBrainProtectionError(REFUSAL)


def test_a_refusal_by_split_brain_protection_becomes_no_quorum_and_marks_the_cluster_as_refusing_writes():
    connection = FakeConnection()
    error = connection.unavailable(SplitBrainProtectionError(REFUSAL), "cannot store")
    assert isinstance(error, NoQuorum) and isinstance(error, Unavailable)
    assert error.status == 503 and error.code == "unavailable"
    assert error.message == "the cluster has fewer than 2 members reachable: writes refused in quorum mode"
    assert connection.quorum.check() == (False, error.message)


def test_any_other_cluster_error_stays_a_plain_unavailable_with_its_message():
    connection = FakeConnection()
    connection.quorum = QuorumWatch(lambda: None)
    error = connection.unavailable(TargetDisconnectedError("gone"), "cannot store in map m: gone")
    assert type(error) is Unavailable and error.message == "cannot store in map m: gone"
    assert connection.quorum.check() == (True, "writes accepted")


def test_a_refusal_is_recognised_as_the_cause_of_another_error_too():
    assert refused_by_quorum(HazelcastError("transaction failed", SplitBrainProtectionError(REFUSAL)))
    assert not refused_by_quorum(HazelcastError("transaction failed", TargetDisconnectedError("gone")))
    assert not refused_by_quorum(None)


def test_the_quorum_check_probes_at_most_once_a_second_and_clears_once_a_probe_is_not_refused():
    clock, outcomes = FakeClock(100.0), [SplitBrainProtectionError(REFUSAL), None]

    def probe():
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome

    watch = QuorumWatch(probe, every=1.0, clock=clock)
    watch.refused()
    assert watch.check()[0] is False  # probed: refused again
    clock.now += 0.5
    assert watch.check()[0] is False and len(outcomes) == 1  # too soon for another probe
    clock.now += 0.5
    assert watch.check() == (True, "writes accepted")
    assert outcomes == []


class FakeQueueProxy:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.offered = []

    def offer(self, item):
        self.offered.append(item)
        return self.answers.pop(0)


def test_the_facade_offers_a_refused_message_once_and_answers_no_quorum():
    refused = FakeQueueProxy(*(ImmediateExceptionFuture(SplitBrainProtectionError(REFUSAL)) for _ in range(3)))
    connection = FakeConnection(proxy=BlockingProxy(refused))
    with pytest.raises(NoQuorum):
        HazelcastQueue(connection, "messages").offer("u-1", "m")
    assert len(refused.offered) == 1  # no retries: it is refused until members return
    assert connection.quorum.check()[0] is False


class BlockingProxy:
    """What ClusterConnection.proxy answers: calls that return results (the fake's futures, resolved)."""

    def __init__(self, proxy):
        self._proxy = proxy

    def __getattr__(self, name):
        method = getattr(self._proxy, name)
        return lambda *args: method(*args).result()


def test_logging_answers_a_refused_write_with_a_503_that_names_the_reason_and_stores_nothing(settings):
    class RefusingStore(FakeMessageStore):
        def add_if_absent(self, message):
            raise NoQuorum()

    store = RefusingStore()
    client = create_logging_app(settings, store=store).test_client()
    response = client.post("/logging", json={"uuid": "u1", "msg": "m"})
    assert response.status_code == 503
    assert response.json == {"error": "unavailable", "message": NoQuorum.text, "reason": "no_quorum"}
    assert store.entries == {}


class FakePool:
    """Copies that all answer one HTTP status and body."""

    def __init__(self, status: int, body: dict):
        self.status, self.data = status, orjson.dumps(body)
        self.asked: list[str] = []

    def request(self, method, base_url, path, **kwargs):
        self.asked.append(base_url)
        return HttpResponse(self.status, self.data)


NO_QUORUM = {"error": "unavailable", "message": NoQuorum.text, "reason": "no_quorum"}


def test_when_every_logging_copy_refuses_the_facade_passes_the_refusal_on_without_blaming_any_copy():
    copies = ["http://logging-1", "http://logging-2", "http://logging-3"]
    pool = FakePool(503, NO_QUORUM)
    breakers = CopyBreakers("logging-service", fail_max=1, reset_timeout=10)
    client = ServiceClient("logging-service", FakeDiscovery({"logging-service": copies}), pool, timeout=1.0,
                           attempts=3, breakers=breakers)
    with pytest.raises(NoQuorum):
        LoggingClient(client).log("u1", "m")
    assert sorted(pool.asked) == copies  # each tried once: under a partition another copy may be on the larger side
    assert [b["state"] for b in breakers.report().values()] == ["closed"] * 3


def test_a_copy_on_the_smaller_side_of_a_partition_refuses_and_another_copy_logs_the_message():
    class SplitPool(FakePool):
        """logging-1's cluster is a member cut off from the others: it refuses; the rest store."""

        def request(self, method, base_url, path, **kwargs):
            self.asked.append(base_url)
            if base_url == "http://logging-1":
                return HttpResponse(503, orjson.dumps(NO_QUORUM))
            return HttpResponse(201, orjson.dumps({"status": "stored", "copy": base_url[7:], "uuid": "u1", "msg": "m",
                                                   "logged_by": base_url[7:], "seq": 1}))

    copies = ["http://logging-1", "http://logging-2"]
    for _ in range(20):  # whichever comes first in the call's random order
        pool = SplitPool(201, {})
        client = ServiceClient("logging-service", FakeDiscovery({"logging-service": copies}), pool, timeout=1.0,
                               attempts=3)
        assert LoggingClient(client).log("u1", "m").copy == "logging-2"


def test_any_other_503_from_logging_is_still_tried_on_the_other_copies():
    copies = ["http://logging-1", "http://logging-2", "http://logging-3"]
    pool = FakePool(503, {"error": "unavailable", "message": "cannot store in map messages: gone"})
    client = ServiceClient("logging-service", FakeDiscovery({"logging-service": copies}), pool, timeout=1.0,
                           attempts=3)
    with pytest.raises(Unavailable) as refused:
        LoggingClient(client).log("u1", "m")
    assert not isinstance(refused.value, NoQuorum)
    assert len(pool.asked) == 3


def test_over_grpc_the_refusal_travels_as_failed_precondition_and_comes_back_as_no_quorum():
    assert status_of(NoQuorum()) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_of(Unavailable("gone")) == grpc.StatusCode.UNAVAILABLE
    assert isinstance(error_of(grpc.StatusCode.FAILED_PRECONDITION, NoQuorum.text, "127.0.0.1:50051"), NoQuorum)


def test_a_post_whose_logging_is_refused_answers_503_fast_and_queues_nothing(settings):
    class RefusedLogging(FakeLogging):
        def log(self, uuid, msg, request_id=None, window=0.0):
            raise NoQuorum()

    queue = FakeQueue()
    client = create_facade_app(settings, facade=Facade(RefusedLogging(), FakeMessages(), queue)).test_client()
    response = client.post("/facade", data={"msg": "m"})
    assert response.status_code == 503
    assert response.json["message"] == NoQuorum.text
    assert queue.items == []


# --- the consumer -----------------------------------------------------------------------------------------------

class FakeTransaction:
    def __init__(self, poll_error: Exception):
        self.poll_error = poll_error
        self.committed = self.rolled_back = False

    def begin(self):
        pass

    def get_queue(self, name):
        transaction = self

        class Queue:
            def poll(self, timeout):
                raise transaction.poll_error

        return Queue()

    def commit(self):
        self.committed = True

    def rollback(self):
        self.rolled_back = True


class FakeClient:
    def __init__(self):
        self.transactions: list[FakeTransaction] = []

    def new_transaction(self, timeout):
        self.transactions.append(FakeTransaction(SplitBrainProtectionError(REFUSAL)))
        return self.transactions[-1]


def test_a_refused_queue_transaction_is_rolled_back_not_committed_and_the_consumer_reports_it():
    client = FakeClient()
    connection = FakeConnection(client=client)
    inbox = HazelcastInbox(connection, "messages-queue", "received")
    consumer = QueueConsumer(inbox, "messages-1", journal=FakeJournal())
    with pytest.raises(NotCommitted, match="writes refused in quorum mode"):
        consumer.step()
    transaction = client.transactions[0]
    assert transaction.rolled_back and not transaction.committed
    assert connection.started_over == []  # rolled back: the client need not be built again
    assert connection.quorum.check()[0] is False


def test_a_probe_answered_by_the_client_is_a_delete_of_a_key_that_is_never_set():
    """The real probe: a write that changes nothing, waited for at most a second."""
    deleted = []

    class Proxy:
        def delete(self, key):
            deleted.append(key)
            return ImmediateFuture(None)

    connection = ClusterConnection.__new__(ClusterConnection)
    connection.proxy = lambda kind, name, blocking=True: Proxy()
    connection._probe_quorum()
    assert deleted == ["probe"]


def test_while_the_client_sees_fewer_than_two_members_the_check_probes_without_a_refused_write_first():
    """So a copy that was asked for nothing still says, on /health, that writes are refused."""
    seen, probes = [3], []

    def probe():
        probes.append(seen[0])
        raise SplitBrainProtectionError(REFUSAL)

    clock = FakeClock(100.0)
    watch = QuorumWatch(probe, members_seen=lambda: seen[0], every=1.0, clock=clock)
    assert watch.check() == (True, "writes accepted") and probes == []  # three members: nothing to ask
    seen[0] = 1
    clock.now += 1
    assert watch.check() == (False, NoQuorum.text) and probes == [1]


def test_a_probe_that_fails_for_another_reason_marks_nothing():
    def probe():
        raise TargetDisconnectedError("gone")

    watch = QuorumWatch(probe, members_seen=lambda: 1, clock=FakeClock(100.0))
    assert watch.check() == (True, "writes accepted")


def test_an_index_refused_by_quorum_is_left_for_later_and_the_read_goes_on():
    """Adding an index is a write: a copy whose client was built while quorum is lost still answers reads."""
    class RefusingMap:
        def add_index(self, **kwargs):
            raise SplitBrainProtectionError(REFUSAL)

    class Map:
        def add_index(self, **kwargs):
            self.added = kwargs["name"]

    assert add_index(RefusingMap(), "messages", SEQ_INDEX) is False
    taken = Map()
    assert add_index(taken, "messages", SEQ_INDEX) is True and taken.added == "messages-seq"


# --- a record its backups did not confirm ----------------------------------------------------------------------

def test_in_quorum_mode_the_logging_and_messages_copies_fail_a_write_its_backups_did_not_confirm(tmp_path,
                                                                                                 monkeypatch):
    """The launcher tells every copy the mode; the logging and messages copies' clients then fail a write whose
    backups were not all acknowledged in time, instead of answering it as made (the facade's keeps the default:
    a queue item lost with its member is offered again from the log)."""
    quorum = plan(Topology(consistency="quorum"), tmp_path, "run")
    available = plan(Topology(), tmp_path, "run")
    for name in ("logging-1", "logging-2", "logging-3", "messages-1", "messages-2"):
        assert quorum[name].env["HZ_CONSISTENCY"] == "quorum"
        assert "HZ_CONSISTENCY" not in available[name].env
    for cls, port in ((MessagesSettings, 8082), (LoggingSettings, 8081)):
        assert cls.load("s", default_port=port, argv=[], environ={"HZ_CONSISTENCY": "quorum"}).hz_consistency \
            == "quorum"
        assert cls.load("s", default_port=port, argv=[], environ={}).hz_consistency == "available"
    confirmed = ClusterConnection(LoggingSettings(), confirmed_writes=True)
    plain = ClusterConnection(LoggingSettings())
    assert (confirmed.confirms_writes, plain.confirms_writes) == (True, False)
    assert confirmed._client_config()["fail_on_indeterminate_operation_state"] is True
    assert plain._client_config()["fail_on_indeterminate_operation_state"] is False
    assert confirmed._client_config()["operation_backup_timeout"] == BACKUP_ACK_TIMEOUT

    built: list[bool] = []

    class RecordingConnection(FakeConnection):
        def __init__(self, settings, *, confirmed_writes=False):
            super().__init__()
            built.append(confirmed_writes)

        def start(self):
            return self

        connected = True

        def health_checks(self):
            return {}

        def close(self):
            pass

    monkeypatch.setattr(cluster_module, "ClusterConnection", RecordingConnection)
    for mode in ("quorum", "available"):
        logging_bootstrap.hazelcast_store(LoggingSettings(hz_consistency=mode))
    assert built == [True, False]


class StoredMap:
    """A logging map that already holds every uuid asked for (a retry, or a copy racing another), as the
    store's blocking proxy answers; what is written again is recorded. Optionally the rewrite is unconfirmed."""

    def __init__(self, rewrite_confirmed: bool = True):
        self.rewritten: list[tuple] = []
        self.rewrite_confirmed = rewrite_confirmed

    def put_if_absent(self, key, value):
        return HazelcastJsonValue(LoggedMessage(key, "first text", "logging-1", 7).to_text())

    def replace_if_same(self, key, old, new):
        if not self.rewrite_confirmed:
            raise IndeterminateOperationStateError("Invocation failed because the backup acks are missed")
        self.rewritten.append((key, old.to_string(), new.to_string()))
        return True

    def add_index(self, **kwargs):
        pass


class ConfirmingConnection(FakeConnection):
    """The logging map as given, its marks in a map of their own."""

    def __init__(self, proxy, confirms_writes: bool):
        super().__init__(proxy=proxy, client=object())
        self.confirms_writes = confirms_writes

    def proxy(self, kind, name, *, blocking=True):
        return self._proxy if name == "log" else Marks()


class Marks:
    def put_if_absent(self, key, value):
        return None


def test_in_quorum_mode_a_message_already_stored_is_written_again_unchanged_before_it_is_answered_as_stored():
    """A retry finds the record its first write left, perhaps on the owner alone (that write failed unconfirmed):
    the record is answered as stored only once a rewrite of it, unchanged, has been confirmed by every backup."""
    stored = StoredMap()
    existing = HazelcastMessageStore(ConfirmingConnection(stored, True), "log").add_if_absent(
        LoggedMessage("u-1", "second text", "logging-2", 9))
    assert existing == LoggedMessage("u-1", "first text", "logging-1", 7)
    first = LoggedMessage("u-1", "first text", "logging-1", 7).to_text()
    assert stored.rewritten == [("u-1", first, first)]

    plain = StoredMap()
    HazelcastMessageStore(ConfirmingConnection(plain, False), "log").add_if_absent(LoggedMessage("u-1", "m", "l", 9))
    assert plain.rewritten == []


def test_in_quorum_mode_a_stored_message_whose_rewrite_is_not_confirmed_is_a_503():
    unconfirmed = StoredMap(rewrite_confirmed=False)
    with pytest.raises(Unavailable, match="IndeterminateOperationStateError"):
        HazelcastMessageStore(ConfirmingConnection(unconfirmed, True), "log").add_if_absent(
            LoggedMessage("u-1", "m", "logging-2", 9))


class OneItemTransaction(FakeTransaction):
    """Polls one message, then nothing."""

    def __init__(self):
        super().__init__(AssertionError("not polled"))
        self.items = [encode_queue_item("u-1", "m")]

    def get_queue(self, name):
        items = self.items

        class Queue:
            def poll(self, timeout):
                return items.pop() if items else None

        return Queue()


class UnconfirmedMap:
    """A received map whose every write was made on its owner but not confirmed by its backups in time."""

    def put_if_absent(self, key, value):
        return ImmediateExceptionFuture(IndeterminateOperationStateError("Invocation failed because the backup "
                                                                         "acks are missed"))


def test_a_record_its_backups_did_not_confirm_is_not_journaled_and_its_batch_goes_back_to_the_queue():
    class Client:
        transactions: list[FakeTransaction] = []

        def new_transaction(self, timeout):
            self.transactions.append(OneItemTransaction())
            return self.transactions[-1]

    class Connection(FakeConnection):
        operation_timeout = 5.0

    client, journal = Client(), FakeJournal()
    consumer = QueueConsumer(HazelcastInbox(Connection(proxy=UnconfirmedMap(), client=client), "messages-queue",
                                            "received"), "messages-1", journal=journal)
    with pytest.raises(NotCommitted, match="IndeterminateOperationStateError"):
        consumer.step()
    transaction = client.transactions[0]
    assert transaction.rolled_back and not transaction.committed
    assert journal.entries == []
    assert (consumer.counts.received, consumer.counts.unanswered) == (0, 1)
