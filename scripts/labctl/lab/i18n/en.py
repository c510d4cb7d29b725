"""English texts of the labs, the lab reports and the experiment (the same keys as uk.py)."""

TEXTS = {
    # --- table headers ---
    "col.name": "NAME",
    "col.address": "ADDRESS",
    "col.health": "HEALTH",
    "col.message": "MESSAGE",
    "col.status": "HTTP",
    "col.uuid": "UUID",
    "col.logged_by": "LOGGED BY",
    "col.received_by": "RECEIVED BY",
    "col.processed_by": "PROCESSED BY (JOURNALS)",
    "col.facade_port": "FACADE PORT",
    "col.copy": "COPY",
    "col.count": "COUNT",
    "col.messages": "MESSAGES",
    "col.post_number": "POST",
    "col.attempt": "GET",
    "col.logging_copy": "LOGGING COPY",
    "col.messages_copy": "MESSAGES COPY",
    "col.logged": "LOGGED",
    "col.also_received": "ALSO IN THAT COPY",
    "col.state": "STATE",
    "col.member": "MEMBER",
    "col.partitions": "PARTITIONS",
    "col.partition": "PARTITION",
    "col.leader": "LEADER",
    "col.lab": "LAB",
    "col.what": "WHAT IT DOES",
    "col.answer": "ANSWER",
    "col.service": "SERVICE",
    "col.instances": "INSTANCES",
    "col.check": "CONSUL CHECK",
    "col.key": "KEY",
    "col.value": "VALUE",
    "col.passing": "PASSING",
    "col.instance": "INSTANCE",
    "col.addresses": "ADDRESSES",
    "col.seconds": "SECONDS",
    "col.stored": "STORED",
    "col.method": "METHOD",
    "col.code": "CODE",
    "col.messages_of_run": "MESSAGES OF THIS RUN",
    "col.messages_in_order": "MESSAGES (logging order)",
    # --- words in tables ---
    "word.healthy": "healthy",
    "word.running": "running",
    "word.stopped": "stopped",
    "word.up": "up",
    "word.down": "down",
    "word.missing": "MISSING",
    # --- the experiment (labctl experiment) ---
    "experiment.posting": "POST msg1..msg{count} to {facade}/facade",
    "experiment.who": "Who got what",
    "experiment.per_copy": "Per copy",
    "experiment.gets": "GET /facade, three times (each picks a messages copy at random)",
    "experiment.summary": "posted {posted}/{count}, logged {logged}, received {received}, duplicated {duplicated}, "
                          "processed twice (journals) {twice}",
    "experiment.processed_twice": "processed twice: {messages}",
    "experiment.journal_unread": "journal not readable: {copies}",
    "experiment.failed": "{count} POSTs failed",
    "experiment.not_logged": "not logged: {messages}",
    "experiment.not_received": "not received by any messages copy: {messages}",
    "experiment.duplicated": "duplicated: {messages}",
    "experiment.pass": "verdict: PASS - every message once",
    "experiment.fail": "verdict: FAIL - {problems}",
    # --- the runner ---
    "run.starting": "starting the lab's system (logs in {logs})...",
    "run.healthy": "all healthy in {seconds} s",
    "run.step": "Step {number}/{total}: {title}",
    "run.prompt": "  [Enter] run this step · [q] stop and clean up: ",
    "run.why": "Why: {text}",
    "run.look": "On the status page ({url}): {text}",
    "run.load": "(background load during this step: {posts} POSTs, {failed} not answered 201)",
    "run.failed": "LAB FAILED: expected {expected}; seen {seen}",
    "run.no_screenshot": "(no screenshot of the status page: {reason})",
    "run.stopping": "stopping the lab's system...",
    "run.report": "report written: {path}",
    "run.done_stopped": "stopped before the end; the system is stopped.",
    "run.done_failed": "the lab failed (exit 1); the system is stopped.",
    "run.done_passed": "every step passed in {seconds} s; the system is stopped.",
    # --- marks on the timelines ---
    "mark.killed": "killed {names}",
    "mark.stopped": "stopped {names}",
    "mark.starting": "starting {names}",
    "mark.started": "{names} healthy",
    "mark.critical": "Consul: {names} critical",
    # --- refusals (exit 2) ---
    "error.cannot_start": "the lab's system cannot start: {reason}. Stop what holds those ports (`labctl stop` "
                          "stops a system labctl started) or move the lab with --port-offset N.",
    "error.no_consul": "lab 5 needs the Consul agent, which is not built on this machine ({path} is missing): "
                       "run `python -m labctl.deps consul` once (10-20 min; `make test` does it too).",
    "error.no_kafka": "lab 4 --kafka needs the Kafka broker's jars ({path} is missing): run "
                      "`python -m labctl.deps kafka` once (`make test` does it too).",
    "error.no_chromium": "--report takes screenshots with Chromium, which is not installed: run "
                         "`python -m labctl.deps chromium` once (`make test` does it too).",
    "error.two_variants": "give one variant at most: --grpc (lab 1) or --kafka (lab 4).",
    "error.no_variant": "lab {lab} has no --{variant} variant; the labs: {known}.",
    "error.no_lab": "there is no lab {lab}; the labs: {known} (`labctl lab list`).",
    # --- what a check expected ---
    "expect.down": "{names} not running",
    "seen.running": "still running: {names}",
    "expect.answers": "the step's calls answered as the system should",
    "expect.all_healthy": "every process healthy",
    "expect.all_201": "all {count} POSTs answered 201",
    "expect.logged_once": "every message logged, each once",
    "expect.received_once": "all {count} messages received by the messages copies, each by one copy, once",
    "expect.read_all": "every GET /facade to return all {count} messages, each once",
    "expect.copies_empty": "both messages copies empty before anything was posted",
    "expect.stopped": "the copies stopped",
    "expect.queue_holds": "the queue to hold the {count} messages, on a member the status page names",
    "expect.queue_moved": "the queue to move off {owner} with its {count} messages",
    "expect.topic_lag": "the topic to hold the {count} messages nobody consumed (the group's lag)",
    "expect.topic_kept": "the {count} waiting messages still in the topic once the broker is back",
    "expect.registered": "every copy registered and passing in Consul: {wanted}",
    "expect.kv": "the cluster's settings in Consul's KV under lab/",
    "expect.critical": "Consul's check of {copy} to turn critical (or {copy} to leave the catalogue)",
    "expect.live_only": "every POST logged by a live copy, none by {copy}",
    "expect.passing": "Consul's check of {copy} passing again",
    "expect.logging_empty": "every logging copy empty before anything was posted",
    "expect.registry": "the config server to name the 3 logging copies",
    "expect.stub_merged": "the logged messages merged with the stub's 'not implemented yet'",
    "expect.dedup": "the first POST stored (201), the repeats answered 200 as duplicates, the uuid stored once",
    "expect.retried_once": "the waiting POST answered 201 once logging was back, and logged once",
    "expect.grpc": "at least {count} Log calls answered OK over gRPC",
    # --- what a check saw ---
    "seen.missing_doubled": "missing: [{missing}], twice: [{doubled}]",
    "seen.read": "GET number {attempt} had {count}; missing: [{missing}]",
    "seen.queue": "queue size {size}, owner {owner}",
    "seen.lag": "lag {lag}",
    "seen.dedup": "answers {codes}, stored {stored} time(s)",
    "seen.retried": "answer {status}, stored {stored} time(s)",
    # --- facts inside explanations ---
    "fact.member_entries": "{member} {owned} (+{backups} backups)",
    # --- the report ---
    "report.meta": "Run on {date}; {seconds} s from start to stop. Every output below is what the running system "
                   "answered.",
    "report.why": "Why.",
    "report.look": "On the status page:",
    "report.screenshot": "the status page after step {number}",
    "report.chart": "201s and failures per second during step {number}",
    "chart.xlabel": "seconds since the first POST or event",
    "chart.ylabel": "POSTs per second",
    "chart.acknowledged": "acknowledged (201)",
    "chart.unavailable": "503 (unavailable)",
    "chart.no_answer": "no answer (refused, reset, timed out)",
    "chart.other": "other status",
    "report.load": "Background load during this step: {posts} POSTs, {accepted} answered 201, {failed} not.",
    "report.verdict": "Result",
    "report.passed": "Every step saw what it expected.",
    "report.failed": "The lab stopped: expected {expected}; seen {seen}.",
    "report.stopped": "Stopped before the last step.",
    # --- lab 1 ---
    "lab1.title": "Lab 1: the basic microservices: facade, logging in memory, a messages stub",
    "lab1.intro": "One facade, one logging copy that keeps messages in its own memory (a dictionary by uuid) and "
                  "a messages service that only answers 'not implemented yet'. Task 1's request shapes, the "
                  "facade's retries and logging's dedup by uuid.",
    "lab1-grpc.title": "Lab 1 (gRPC): the facade logs over gRPC",
    "lab1-grpc.intro": "As lab 1, but the facade calls logging's LoggingService.Log over gRPC; reads stay HTTP.",
    "lab1.start.title": "Start the system: facade, one logging copy in memory, the messages stub",
    "lab1.start.why": "{processes} processes and no Hazelcast member: logging keeps what it gets in its own "
                      "process, and the messages service is a stub. The config server tells the facade where "
                      "both are.",
    "lab1.start.look": "no cluster section: there is no cluster; the copies are healthy.",
    "lab1.post.title": "POST three messages the Task 1 way (txt on the facade's root)",
    "lab1.post.why": "The facade gave each message a uuid and sent {{uuid, msg}} to logging, which stored it: 201. "
                     "All went to the one copy there is ({spread}).",
    "lab1.post.look": "the last messages list the three, logged by logging-1.",
    "lab1.read.title": "GET through the facade: logging's messages and the messages service's answer",
    "lab1.read.why": "The facade asked both services and merged the answers: logging's {count} messages, and the "
                     "stub's '{stub}'.",
    "lab1.read.look": "messages-1 is up, and says what it is: a stub.",
    "lab1.dedup.title": "POST the same uuid to logging three times",
    "lab1.dedup.why": "Logging keys messages by uuid: the first POST stored it (201), the repeats found uuid {uuid} "
                      "already there and answered 200 without storing it again ({stored} stored). That is what "
                      "makes a retry safe.",
    "lab1.dedup.look": "nothing: the POSTs went straight to logging, not through the facade.",
    "lab1.retry.title": "Stop logging, POST with a retry window, start logging in the middle",
    "lab1.retry.why": "The facade kept retrying logging for up to {window} s (Prefer: wait); logging came back and "
                      "the POST was answered 201 after {seconds} s, logged once. Logging had {before} messages "
                      "before and has {after} now: its memory died with the process, which is why lab 3 puts "
                      "the messages in a distributed map. POSTs without a retry window got a fast 503 "
                      "({load_failed} of {load_posts}).",
    "lab1.retry.look": "logging-1 turns down, then up; the retried message appears in the last messages.",
    "lab1.grpc.title": "Count the gRPC calls logging answered",
    "lab1.grpc.why": "Every POST of this lab reached logging as a gRPC Log call ({ok} answered OK): the facade "
                     "found logging's gRPC address (logging-service-grpc) from the config server.",
    "lab1.grpc.look": "nothing new: the page shows the copies' health, not the calls.",
    # --- lab 3 ---
    "lab3.title": "Lab 3: logging on a Hazelcast distributed map",
    "lab3.intro": "Three logging copies, each paired with a Hazelcast member, keep messages in one distributed "
                  "map; the config server tells the facade where they are; the facade picks a copy at random. "
                  "Then copies are killed together with their members: nothing is lost.",
    "lab3.start.title": "Start the system: 3 members, 3 logging copies, config server, facade (no queue yet)",
    "lab3.start.why": "{processes} processes: {members} Hazelcast members form one cluster, logging-N is paired "
                      "with member-N (its client connects to that member first).",
    "lab3.start.look": "three members up; no messages copies, no queue in this lab.",
    "lab3.empty.title": "Ask each logging copy what it holds",
    "lab3.empty.why": "The map is empty: all {copies} copies answer an empty list.",
    "lab3.empty.look": "the members hold 0 entries.",
    "lab3.registry.title": "Ask the config server where the services are",
    "lab3.registry.why": "The facade does not know any address: it asks the config server by service name, which "
                         "answers the {count} logging copies from its file (and caches the answer).",
    "lab3.registry.look": "the service copies table is read from the same registry.",
    "lab3.post.title": "POST msg1 ... msg10 through the facade",
    "lab3.post.why": "Every POST was answered 201; the facade picked a logging copy at random for each ({spread}).",
    "lab3.post.look": "the last messages list msg1..msg10 with the copy that logged each.",
    "lab3.logged.title": "Show which messages each logging copy received",
    "lab3.logged.why": "Each copy logged its share, yet all write one distributed map: an entry lives on the member "
                       "owning its key's partition, with synchronous backups on the other two ({entries}). That is "
                       "why any copy reads all {count}.",
    "lab3.logged.look": "the members' bars: entries owned and backups held, as Management Center shows them.",
    "lab3.read.title": "GET everything through the facade",
    "lab3.read.why": "Whichever copy the facade asks, it reads all {count} from the map.",
    "lab3.read.look": "the logged count is {count}.",
    "lab3.kill1.title": "Kill logging-1 together with member-1, read again",
    "lab3.kill1.why": "{copy} and {member} are gone; {live} members are left and every entry had a backup on them, "
                      "so all {count} messages are read again ({seconds} s after the kill). {load_failed} of "
                      "{load_posts} POSTs sent meanwhile were not answered 201; the facade passed over the dead "
                      "copy. Entries now: {entries}.",
    "lab3.kill1.look": "member-1 down; its partitions moved to the others, the backups were promoted.",
    "lab3.kill2.title": "Kill logging-2 together with member-2, read again",
    "lab3.kill2.why": "Only one member is left, and it has all {count} messages: with two synchronous backups, any "
                      "two of the three members may die. ({entries}; read {seconds} s after the kill; "
                      "{load_failed} of {load_posts} POSTs not answered 201.)",
    "lab3.kill2.look": "one member up, owning every entry; logging-1 and logging-2 down.",
    # --- lab 4 ---
    "lab4.title": "Lab 4: a message queue between the facade and two messages copies",
    "lab4.intro": "Three logging copies on three Hazelcast members, a config server, the facade, and two messages "
                  "copies consuming a Hazelcast queue. First who logged and who received what, then the queue's "
                  "drill: the copies stopped, messages posted, the queue's member killed, the copies started again.",
    "lab4-kafka.title": "Lab 4 (Kafka): a Kafka topic between the facade and two messages copies",
    "lab4-kafka.intro": "As lab 4, with a Kafka broker and a 'messages' topic of two partitions in the Hazelcast "
                        "queue's place. The drill kills the broker instead of a member.",
    "lab4.start.title": "Start the system: 3 members, 3 logging copies, 2 messages copies, config server, facade",
    "lab4.start.why": "{processes} processes run: {members} Hazelcast members form one cluster, each logging copy is "
                      "paired with a member, and the config server tells the facade where the {logging} logging and "
                      "{messages} messages copies are.",
    "lab4.start.look": "every member up, every copy healthy; the queue is still empty.",
    "lab4.empty.title": "Ask both messages copies what they hold",
    "lab4.empty.why": "Nothing was posted yet, so both copies answer an empty list: a copy keeps only what it took "
                      "from the queue itself.",
    "lab4.empty.look": "'received' is 0 for both messages copies.",
    "lab4.post.title": "POST msg1 ... msg10 through the facade",
    "lab4.post.why": "Every POST was answered 201: the facade logged the message through a logging copy chosen at "
                     "random ({spread}), then offered it to the queue. A 201 means both writes were done.",
    "lab4.post.look": "the last messages list msg1..msg10 with the copy that logged each; the queue's offers per "
                      "second rise for a moment.",
    "lab4.logged.title": "Show which logging copy logged which message",
    "lab4.logged.why": "Each copy logged its share, but all copies write one distributed map: its entries live on "
                       "the member owning their key's partition, with synchronous backups on the other two "
                       "({entries}). Any copy reads all {count}.",
    "lab4.logged.look": "the members' bars: entries owned and backups held, per member.",
    "lab4.received.title": "Show which messages copy received which message",
    "lab4.received.why": "The two copies compete on one queue: each item is taken by exactly one of them, in a "
                         "transaction committed after the copy recorded it ({spread}). Together they hold all {count}.",
    "lab4.received.look": "'received' per messages copy; together they add up to the messages posted.",
    "lab4.merged.title": "GET through the facade several times",
    "lab4.merged.why": "Each GET returns everything logged ({count}) merged with one messages copy chosen at random: "
                       "the column on the right shows how many of them that copy received, a different part each "
                       "time the other copy is asked.",
    "lab4.merged.look": "nothing changes: reading neither takes nor clears anything.",
    "lab4.stop.title": "Stop both messages copies",
    "lab4.stop.why": "With {copies} stopped nobody consumes: what is posted now waits in the queue, held by the "
                     "member that owns the queue's partition.",
    "lab4.stop.look": "both messages copies turn down in the service copies table.",
    "lab4.queued.title": "POST messages while nobody consumes",
    "lab4.queued.why": "The {count} messages wait in the queue '{queue}'. Its partition is owned by {owner}; the "
                       "two other members hold synchronous backups of every item.",
    "lab4.queued.look": "the queue section: its size and its owner, {owner}.",
    "lab4.kill.title": "Kill the member that holds the queue",
    "lab4.kill.why": "{owner} died with the queue's primary copy, but its backups were written before each 201: "
                     "{new_owner} promoted its backup and now owns the queue, still {size} items (the {count} and "
                     "what the background load added). Of {load_posts} POSTs sent meanwhile, {load_failed} were "
                     "not answered 201: a failed one is a fast 503, never a 201 that is lost.",
    "lab4.kill.look": "{owner} turns down, the queue's owner becomes {new_owner}, its size does not drop.",
    "lab4.queued_kafka.title": "POST messages while nobody consumes",
    "lab4.queued_kafka.why": "The {count} messages are written to the topic's partitions (leader: {leaders}) and "
                             "wait there: the group of messages copies has not committed them, its lag is {count}.",
    "lab4.queued_kafka.look": "the Kafka topic section: written grows, committed stays, lag is {count}.",
    "lab4.kill_broker.title": "Kill the Kafka broker, then start it again",
    "lab4.kill_broker.why": "The broker was down {down} s: POSTs in that time were answered 503 (nothing was "
                            "acknowledged that was not written). Its log is on disk, so once it is back the topic "
                            "still holds the {count} waiting messages (lag {lag}, the load's included).",
    "lab4.kill_broker.look": "the topic's partitions lose their leader, then get it back; the lag is kept.",
    "lab4.drain.title": "Start the messages copies again, one after the other",
    "lab4.drain.why": "{first} started first and began taking what waited; the other joined later. Together they "
                      "received all {count} messages that were answered 201 while they were down, each once "
                      "({spread}): nothing was lost with the killed node, nothing was taken twice.",
    "lab4.drain.look": "the queue (or the lag) falls to 0; 'received' per copy adds up.",
    # --- lab 5 ---
    "lab5.title": "Lab 5: Consul: registration, health checks, settings in KV, two facades",
    "lab5.intro": "A Consul agent in the config server's place. Every copy registers itself with a health check "
                  "and deregisters on shutdown; the Hazelcast and queue settings live in Consul's KV; two facades "
                  "(8080 and 8088) find the copies through Consul only.",
    "lab5.start.title": "Start the system in Consul mode: Consul, 3 members, 3 logging, 2 messages, 2 facades",
    "lab5.start.why": "{processes} processes run. The Consul agent started first and got the settings in its KV; "
                      "every service then read them from there and registered itself: no address is written in "
                      "any service's settings.",
    "lab5.start.look": "every copy listed, found through Consul, each healthy.",
    "lab5.registered.title": "See every copy registered in Consul with its health check",
    "lab5.registered.why": "{instances} instances registered themselves on start, each with an HTTP check of its "
                           "/health every second; a copy becomes passing after its first check. The facades ask "
                           "Consul for passing instances only.",
    "lab5.registered.look": "the service copies table: the same instances Consul lists.",
    "lab5.kv.title": "Read the settings in Consul's KV",
    "lab5.kv.why": "{keys} keys: the Hazelcast cluster's name and members ({members}) that logging and messages "
                   "connect with, and the queue's and maps' names that the facade and messages use. Change them "
                   "here, not in the code.",
    "lab5.kv.look": "nothing new: the settings are read once at start.",
    "lab5.post.title": "POST msg1 ... msg10, through both facades in turn",
    "lab5.post.why": "Both facades answered 201: each found the logging copies through Consul and picked one at "
                     "random ({spread}).",
    "lab5.post.look": "each facade's page lists the messages it took itself.",
    "lab5.read.title": "Read everything through the second facade",
    "lab5.read.why": "{facade} returns all {count}, those posted through the other facade too: both write one "
                     "distributed map, whichever logging copy they picked.",
    "lab5.read.look": "the logged count on the page is the same on both facades.",
    "lab5.kill.title": "Kill a logging copy and watch its Consul check",
    "lab5.kill.why": "{copy} was killed without deregistering; Consul's next check of its /health failed and turned "
                     "it {state} after {seconds} s. Meanwhile {load_failed} of {load_posts} POSTs were not "
                     "answered 201: a facade that met the dead copy retried another one.",
    "lab5.kill.look": "{copy} turns down in the service copies table.",
    "lab5.after.title": "POST again: only live copies log",
    "lab5.after.why": "The facades ask Consul for passing instances: {copy} is not among them, so every POST went to "
                      "a live copy ({spread}).",
    "lab5.after.look": "the last messages name only live logging copies.",
    "lab5.restart.title": "Start the copy again",
    "lab5.restart.why": "{copy} registered itself again on start and passed its first check: the facades use it "
                        "again without being told.",
    "lab5.restart.look": "{copy} is up again.",
}
