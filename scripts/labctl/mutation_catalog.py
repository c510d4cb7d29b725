"""The mutations `labctl mutate` makes: for each guarantee, the code that holds it, found by a pattern, broken the
way a plausible mistake would break it, and the tests that must then fail.

A mutation is fast when some of its tests are unit or integration tests: `make test` runs those (only those)
after the suite; `make mutate` runs every mutation with all of its tests, drills and whole systems included.
"""

from __future__ import annotations

from dataclasses import dataclass

FAST_SUITES = ("tests/unit/", "tests/integration/")


@dataclass(frozen=True)
class Edit:
    pattern: str  # a regular expression (multi-line: ^ and $ match at each line) found exactly once in the file
    replacement: str  # what the match becomes; \1, \g<1> name the pattern's groups


@dataclass(frozen=True)
class Mutation:
    name: str
    breaks: str  # the guarantee, in the README's words
    path: str  # relative to the repository
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids that must fail with it (at least one; the fast ones first)

    @property
    def fast_tests(self) -> tuple[str, ...]:
        return tuple(t for t in self.tests if t.startswith(FAST_SUITES))

    @property
    def fast(self) -> bool:
        return bool(self.fast_tests)


CONSUMER = "tests/integration/test_queue_consumer.py::"
PROMISE = "tests/e2e/test_promise.py::"
FACADE_APP = "tests/unit/test_facade_app.py::"
SETTINGS = "tests/unit/test_settings.py::"
QUORUM_UNIT = "tests/unit/test_quorum.py::"
LOGGING_FAILS = ("tests/e2e/test_system.py::"
                 "test_a_post_whose_logging_fails_answers_503_and_its_message_is_never_delivered")
OFFER_FAILS = (PROMISE + "test_a_post_whose_queue_offer_fails_after_logging_is_a_503_stays_logged_is_redelivered_and_"
               "a_retry_converges")
BACKUPS_ADD_UP = "tests/integration/test_member_metrics.py::test_map_entries_and_queue_items_add_up_over_the_members"
BACKUPS_SYNC = ("tests/integration/test_member_metrics.py::"
                "test_a_write_is_answered_only_once_both_backups_have_it")
PROMISED_DEFAULTS = SETTINGS + "test_the_promised_timeouts_are_the_defaults_the_launched_services_run_with"
LOG_CALL = r"^(?P<indent>[ \t]*)logged = self\._logging\.log\(uuid, msg, request_id, window=.*\)$"
OFFER_CALL = r"^(?P<indent>[ \t]*)self\._queue\.offer\(uuid, msg, request_id\)$"

MUTATIONS: tuple[Mutation, ...] = (
    # --- a repeated uuid is stored once --------------------------------------------------------------------
    Mutation("logging-put", "a repeated uuid is stored once (logging)", "logging_service/adapters/hazelcast.py",
             (Edit(r"(existing = messages\.)put_if_absent(\(message\.uuid, value\))", r"\1put\2"),),
             ("tests/integration/test_logging_store.py::"
              "test_copies_on_different_connections_share_one_map_and_dedup_between_them",)),
    Mutation("consumer-put", "a uuid already recorded is dropped when it is taken again (the received map)",
             "messages_service/adapters/hazelcast.py",
             (Edit(r"(received\.)put_if_absent(\(message\.uuid, HazelcastJsonValue)", r"\1put\2"),),
             (CONSUMER + "test_a_uuid_taken_again_by_another_copy_is_dropped_and_the_first_record_stands",)),
    # --- each queued message is received by exactly one copy, once ----------------------------------------
    Mutation("commit-before-record", "records each uuid with put_if_absent, then commits",
             "messages_service/adapters/hazelcast.py",
             (Edit(r"^(?P<indent>[ \t]*)(?P<call>outcome = self\._received\.record\(instance, entries\))$",
                   r"\g<indent>transaction.commit()\n\g<indent>\g<call>"),
              Edit(r"(raise outcome\.failure\n)[ \t]*transaction\.commit\(\)\n", r"\1")),
             (CONSUMER + "test_a_batch_not_yet_committed_holds_no_lock_on_what_it_recorded",)),
    Mutation("commit-despite-record-failure", "a poll not committed goes back to the queue (recording failed)",
             "messages_service/adapters/hazelcast.py",
             (Edit(r"^[ \t]*if outcome\.failure is not None:\n[ \t]*raise outcome\.failure\n", ""),),
             (CONSUMER + "test_a_batch_whose_recording_failed_is_not_committed_and_its_items_come_back",)),
    Mutation("no-redelivery", "the message stays logged and is delivered by redelivery",
             "messages_service/redelivery.py",
             (Edit(r"^(?P<indent>[ \t]*)now_us = int\(now \* 1e6\)$", r"\g<indent>return 0"),),
             (CONSUMER + "test_what_was_logged_but_never_queued_is_offered_again_until_a_copy_receives_it",
              OFFER_FAILS)),
    # --- POST answers 201 only when both writes are done; nothing is delivered that was not logged ---------
    Mutation("201-before-logging", "POST answers 201 only when both writes are done", "facade_service/service.py",
             (Edit(LOG_CALL, r"\g<indent>from lab_common.contracts import LoggedMessage; "
                             r'logged = Logged(LoggedMessage(uuid, msg, "not yet", 0), False, ""); '
                             r"self._readers.submit(self._logging.log, uuid, msg, request_id, window=0.0)"),),
             (FACADE_APP + "test_logging_down_answers_503_and_the_message_is_never_queued", LOGGING_FAILS)),
    Mutation("offer-before-log", "nothing is delivered that was not logged", "facade_service/service.py",
             (Edit(LOG_CALL, r"\g<indent>self._queue.offer(uuid, msg, request_id)\n\g<0>"),
              Edit(r"(raise Conflict\(.*\n)[ \t]*self\._queue\.offer\(uuid, msg, request_id\)\n", r"\1")),
             (FACADE_APP + "test_logging_down_answers_503_and_the_message_is_never_queued", LOGGING_FAILS)),
    Mutation("offer-failure-ignored", "if the queue offer fails after logging: 503 (not 201)",
             "facade_service/service.py",
             (Edit(OFFER_CALL, r"\g<indent>try:\n\g<indent>    self._queue.offer(uuid, msg, request_id)\n"
                               r"\g<indent>except Unavailable:\n\g<indent>    pass"),),
             (FACADE_APP + "test_queue_down_answers_503_and_the_message_stays_logged_for_redelivery", OFFER_FAILS)),
    Mutation("offer-refusal-ignored", "if the queue refuses the offer (full): 503 (not 201)",
             "facade_service/adapters/hazelcast.py",
             (Edit(r"^(?P<indent>[ \t]*)if not accepted:$", r"\g<indent>if False:"),),
             ("tests/unit/test_facade_adapters.py::test_an_offer_the_queue_refuses_is_unavailable", OFFER_FAILS)),
    # --- ... with 2 synchronous backups: any 2 of the 3 members may then die at once ----------------------
    Mutation("map-one-backup", "the map keeps 2 synchronous backups", "hazelcast/member.yaml",
             (Edit(r"^(  map:\n    default:\n      backup-count: )2$", r"\g<1>1"),),
             (BACKUPS_ADD_UP,
              "tests/drills/test_drills.py::test_map_keeps_a_thousand_when_two_of_three_members_die_at_once")),
    Mutation("queue-one-backup", "the queue keeps 2 synchronous backups", "hazelcast/member.yaml",
             (Edit(r"^(  queue:\n    default:\n      backup-count: )2$", r"\g<1>1"),),
             (BACKUPS_ADD_UP,)),
    Mutation("queue-async-backups", "the queue's backups are synchronous (written before the answer)",
             "hazelcast/member.yaml",
             (Edit(r"^(  queue:\n    default:\n      backup-count: )2(\n      async-backup-count: )0$",
                   r"\g<1>0\g<2>2"),),
             (BACKUPS_SYNC,)),
    # --- no request hangs: the promised bounds ---------------------------------------------------------
    Mutation("http-timeout-10s", "every outgoing HTTP call has a timeout (2 s)", "lab_common/settings.py",
             (Edit(r"^(?P<indent>[ \t]*)2\.0(, \"LAB_HTTP_TIMEOUT\")", r"\g<indent>10.0\2"),),
             (PROMISED_DEFAULTS,
              PROMISE + "test_a_logging_copy_that_accepts_and_never_answers_is_failed_over_within_the_call_timeout")),
    Mutation("hazelcast-timeout-10s", "a Hazelcast operation is given up after 5 s", "lab_common/settings.py",
             (Edit(r"^(?P<indent>[ \t]*)5\.0(, \"HZ_INVOCATION_TIMEOUT\")", r"\g<indent>10.0\2"),),
             (PROMISED_DEFAULTS, PROMISE + "test_a_hazelcast_operation_on_a_member_that_hangs_is_given_up_after_5_s")),
    # --- quorum mode: a message is answered as stored only once every backup holds it ---------------------
    Mutation("logging-unconfirmed", "in quorum mode the logging copies' client fails a write its backups did not "
             "all confirm", "logging_service/bootstrap.py",
             (Edit(r"confirmed_writes=settings\.hz_consistency == \"quorum\"", "confirmed_writes=False"),),
             (QUORUM_UNIT + "test_in_quorum_mode_the_logging_and_messages_copies_fail_a_write_its_backups_did_not_"
              "confirm",
              "tests/e2e/test_quorum_mode.py::test_a_message_one_backup_did_not_confirm_is_a_503_and_after_the_"
              "thaw_the_same_uuid_is_stored_once")),
    Mutation("stored-unconfirmed", "in quorum mode a message already stored is written again, confirmed, before it "
             "is answered as stored", "logging_service/adapters/hazelcast.py",
             (Edit(r"^(?P<indent>[ \t]*)if existing is not None and self\._connection\.confirms_writes:$",
                   r"\g<indent>if False:"),),
             (QUORUM_UNIT + "test_in_quorum_mode_a_message_already_stored_is_written_again_unchanged_before_it_is_"
              "answered_as_stored",)),
    Mutation("lone-member-kept", "a client whose write is refused while it follows one member starts over with "
             "the other members tried first (a bridge's dropped member)", "lab_common/cluster.py",
             (Edit(r"^(?P<indent>[ \t]*)if not seen or len\(seen\) >= QUORUM .*:$", r"\g<indent>if True:"),),
             ("tests/unit/test_lone_member.py::test_a_write_refused_while_the_client_follows_one_member_starts_it_"
              "over_with_that_member_tried_last",
              "tests/drills/test_net_drills.py::test_a_client_following_the_member_a_bridge_drops_takes_writes_"
              "again_once_it_is_dropped[quorum]")),
    # --- the messages journal: what each copy processed, seen from outside the received map ---------------
    Mutation("journal-skipped", "each copy journals what it records before it commits (duplicates seen from "
             "outside the received map)", "messages_service/consumer.py",
             (Edit(r"^(?P<indent>[ \t]*)self\._journal\.append\(\[JournalEntry\(.*\)$", r"\g<indent>pass"),),
             ("tests/unit/test_messages_journal.py::test_each_recorded_message_is_journaled_with_its_copy_and_batch_"
              "and_the_next_batch_has_another_id",
              CONSUMER + "test_two_consumers_take_every_item_exactly_once_and_their_journals_together_hold_each_once")),
)
