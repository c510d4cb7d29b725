"""labctl: run the lab's system and its experiments. `labctl COMMAND --help` tells each command's options."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from lab_common.contracts import LOGGING_STORES, QUORUM
from labctl.bench import add_arguments as add_bench_arguments
from labctl.bench import run_bench
from labctl.control import ControlError
from labctl.drills import DRILLS, run_drill
from labctl.lab.command import add_arguments as add_lab_arguments
from labctl.lab.command import run_lab_command
from labctl.launcher import DEFAULT_RUN_DIR, System, Topology, seed_consul_kv
from labctl.launcher.topology import CONSISTENCIES, QUEUE_CHOICES
from labctl.mutation import add_arguments as add_mutate_arguments
from labctl.mutation import run_mutate
from labctl.netfaults.command import add_arguments as add_net_arguments
from labctl.table import render


def _say(line: str) -> None:
    print(line, flush=True)


def status_table(system: System) -> str:
    rows = [(r["name"], r["url"], r["pid"] or "-", "healthy" if r["healthy"] else r["detail"], r["log"])
            for r in system.status()]
    return render(["NAME", "ADDRESS", "PID", "HEALTH", "LOG"], rows) + "\n" + consistency_line(system.state().topology)


def consistency_line(topology: Topology) -> str:
    if topology.quorum:
        return f"consistency: quorum (writes refused with 503 unless {QUORUM} members are in touch)"
    return "consistency: available (writes taken while one member is left)"


def _topology(args) -> Topology:
    facades = args.facades if args.facades is not None else (2 if args.discovery == "consul" else 1)
    return Topology(cluster_name=args.cluster_name, members=args.members, logging=args.logging,
                    messages=args.messages, facades=facades, port_offset=args.port_offset, server=args.server,
                    discovery=args.discovery, prometheus=args.prometheus, transport=args.transport,
                    queue=args.queue, brokers=args.brokers, logging_store=args.logging_store,
                    messages_stub=args.messages_stub, consistency=args.consistency, hosts=args.hosts)


def _refused(args) -> str | None:
    """Why the topology the options ask for cannot run, or None: refused before anything starts."""
    problems = _topology(args).problems()
    return "; ".join(problems) if problems else None


def cmd_start(args) -> int:
    system = System(args.run_dir)
    _say(f"starting the system (logs in {system.run_dir / 'logs'})...")
    started = time.monotonic()
    system.start(_topology(args), timeout=args.timeout, progress=_say)
    _say(f"all healthy in {time.monotonic() - started:.1f}s\n")
    _say(status_table(system))
    return 0


def cmd_run(args) -> int:
    """Start in the foreground; stop everything on Ctrl-C or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    system = System(args.run_dir)
    try:
        cmd_start(args)
        facade = _topology(args).facade_port(1)
        _say(f"\nfacade: curl -X POST -d msg=hello http://127.0.0.1:{facade}/facade    (Ctrl-C stops everything)")
        bootstrap = _topology(args).kafka_bootstrap()
        if bootstrap:
            _say(f"messages go through Kafka: brokers {bootstrap}, topic messages")
        grpc_ports = _topology(args).grpc_ports()
        if grpc_ports:
            _say("the facade logs over gRPC: " + ", ".join(f"{n} on {port}" for n, port in grpc_ports.items()))
        down: set[str] = set()
        while not stop.wait(2.0):
            rows = {r["name"]: r for r in system.status()}
            for name, row in rows.items():
                if not row["running"] and name not in down:
                    _say(f"{time.strftime('%H:%M:%S')} {name} is not running (`labctl start-process {name}`)")
                    down.add(name)
                elif row["running"] and name in down:
                    _say(f"{time.strftime('%H:%M:%S')} {name} is running again")
                    down.discard(name)
    finally:
        _say("stopping everything...")
        system.stop()
        _say("stopped.")
    return 0


def cmd_status(args) -> int:
    system = System(args.run_dir)
    _say(status_table(system))
    return 0 if all(r["healthy"] for r in system.status()) else 1


def cmd_stop(args) -> int:
    system = System(args.run_dir)
    if args.names:
        for name in args.names:
            system.terminate(name)
            _say(f"stopped {name}")
    else:
        system.stop()
        _say("stopped everything")
    return 0


def cmd_kill(args) -> int:
    system = System(args.run_dir)
    for name in args.names:
        at = system.kill(name)
        _say(f"killed {name} (SIGKILL) at {time.strftime('%H:%M:%S', time.localtime(at))}")
    return 0


def cmd_start_process(args) -> int:
    system = System(args.run_dir)
    for name in args.names:
        system.start_process(name, wait=not args.no_wait, timeout=args.timeout)
        _say(f"started {name}" + ("" if args.no_wait else " (healthy)"))
    return 0


def cmd_restart(args) -> int:
    system = System(args.run_dir)
    for name in args.names:
        system.restart(name, timeout=args.timeout)
        _say(f"restarted {name} (healthy)")
    return 0


def cmd_consul_seed(args) -> int:
    values = seed_consul_kv(args.consul, args.cluster_name)
    _say(render(["KEY", "VALUE"], [(f"lab/{k}", v) for k, v in values.items()]))
    return 0


def cmd_experiment(args) -> int:
    from labctl.experiment import run_experiment
    from labctl.lab.i18n import catalogue

    return run_experiment(System(args.run_dir), count=args.count, out=_say, facade_name=args.facade,
                          t=catalogue(args.lang))


def cmd_bench(args) -> int:
    return run_bench(args, out=_say)


def cmd_net(args) -> int:
    """Exit 2, nothing changed, on a wrong host, side or value, or a system without hosts."""
    from labctl.netfaults.command import run_net
    from labctl.netfaults.rules import NetUsageError

    try:
        return run_net(args, _say)
    except NetUsageError as err:
        print(f"labctl net: {err}", file=sys.stderr)
        return 2


def cmd_mutate(args) -> int:
    return run_mutate(args, out=_say)


def cmd_lab(args) -> int:
    return run_lab_command(args, args.run_dir, _say)


def cmd_drill(args) -> int:
    """Run one node-kill drill and print its report; exit 1 on any loss, duplicate or failed check."""
    if args.name == "list":
        _say(render(["DRILL", "WHAT IT DOES"], [(name, drill.title) for name, drill in DRILLS.items()]))
        return 0
    if args.compose_project:
        from labctl.docker_control import DockerCompose

        controller = DockerCompose(args.compose_project, cluster_name=args.cluster_name)
    else:
        controller = System(args.run_dir)
    reports = []
    for run in range(1, args.repeat + 1):
        if args.repeat > 1:
            _say(f"\n=== {args.name}: run {run} of {args.repeat}")
        report = run_drill(args.name, controller, out=_say)
        reports.append(report)
        _say("\n" + report.to_text())
        if args.chart:
            from labctl.timeline import Timeline, save_timeline

            chart = args.chart if args.repeat == 1 else args.chart.with_stem(f"{args.chart.stem}-{run}")
            save_timeline(Timeline.from_report(report), chart, f"drill {args.name}: {report.verdict[:60]}")
            _say(f"timeline chart: {chart}")
    if args.repeat > 1:
        _say(f"\n{args.name}, {args.repeat} runs back to back\n" + render(
            ["RUN", "VERDICT", "ANSWERED 201", "LOST", "PROCESSED TWICE", "PROBLEMS"],
            [(i, r.verdict[:40], r.posted, len(r.lost), len(r.processed_twice), len(r.problems))
             for i, r in enumerate(reports, 1)]))
    return 0 if all(r.passed for r in reports) else 1


def _repeat_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 20:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of runs, 1 to 20")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
                        help="where the state file and logs live (default: var/run)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def topology_options(p):
        p.set_defaults(refuse=p.error)
        p.add_argument("--members", type=int, default=3,
                       help="Hazelcast members (default 3; 0 when nothing needs the cluster: --logging-store memory, "
                            "--queue none, --messages 0 or --messages-stub)")
        p.add_argument("--logging", type=int, default=3, help="logging-service copies (default 3)")
        p.add_argument("--messages", type=int, default=2, help="messages-service copies (default 2)")
        p.add_argument("--facades", type=int, default=None,
                       help="facade-service copies (default 1; 2 with --discovery consul, on 8080 and 8088)")
        p.add_argument("--discovery", choices=["config-server", "consul"], default="config-server",
                       help="config-server (default) or consul: a dev agent on 8500, settings in its KV")
        p.add_argument("--transport", choices=["http", "grpc"], default="http",
                       help="how the facade logs a POST: http (default), or grpc: logging-1/2/3 also serve gRPC "
                            "on 50051/50053/50055 (+ offset), found as logging-service-grpc (reads stay HTTP)")
        p.add_argument("--queue", choices=QUEUE_CHOICES, default="hazelcast",
                       help="the channel facade -> messages: hazelcast (default: the cluster's queue), kafka: "
                            "Kafka brokers in KRaft mode, a 'messages' topic with 2 partitions (docs/kafka.md), "
                            "or none: the facade only logs (the lab's Tasks 1 and 3; --messages 0 or --messages-stub)")
        p.add_argument("--logging-store", choices=LOGGING_STORES, default="hazelcast",
                       help="where logging copies keep messages: hazelcast (default: the cluster's map) or memory: "
                            "each copy its own, no members needed (the lab's Task 1)")
        p.add_argument("--messages-stub", action="store_true",
                       help="run the messages copies as the lab's Task 1 stub: GET /messages answers "
                            "'not implemented yet' (with --queue none)")
        p.add_argument("--brokers", type=int, choices=[1, 3], default=1,
                       help="Kafka brokers with --queue kafka: 1 (default, on 9092) or 3 (9092/9094/9096, "
                            "controllers on the port above each; + offset)")
        p.add_argument("--hosts", type=int, default=0, metavar="N",
                       help="N hosts on this machine (3 with the default members), each a network namespace with "
                            "its own address holding one member, its logging copy and a messages copy; the facade "
                            "and the config server on the machine itself; faults: `labctl net` (needs root, "
                            "iproute2, nftables, iptables; docs/network-faults.md)")
        p.add_argument("--consistency", choices=CONSISTENCIES, default="available",
                       help="available (default): writes are taken while one member is left; quorum: members "
                            f"refuse writes (503) unless {QUORUM} of them are in touch (docs/fault-tolerance.md)")
        p.add_argument("--port-offset", type=int, default=0, help="add this to every default port")
        p.add_argument("--cluster-name", default="lab", help="Hazelcast cluster name (default lab)")
        p.add_argument("--server", choices=["granian", "gunicorn", "dev"], default="granian",
                       help="granian (default: HTTP parsed in Rust, Flask in worker threads), gunicorn "
                            "(gthread workers) or Flask's development server")
        p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for all healthy")
        p.add_argument("--prometheus", action="store_true",
                       help="also start Prometheus on 9090 (+ offset) scraping every service and member "
                            "(Debian's prometheus package, installed on first use)")

    p = sub.add_parser("run", help="start everything in the foreground; Ctrl-C stops it all")
    topology_options(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("start", help="start everything detached, wait until healthy, print the table")
    topology_options(p)
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("status", help="what runs where and whether it is healthy (exit 1 if not all are)")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("stop", help="stop everything, or only the named processes (SIGTERM, then SIGKILL)")
    p.add_argument("names", nargs="*", metavar="NAME", help="e.g. messages-1 member-2 (default: all)")
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("kill", help="SIGKILL the named processes, e.g. member-2 logging-3")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=cmd_kill)
    p = sub.add_parser("start-process", help="start named processes again with the settings they had")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--no-wait", action="store_true", help="do not wait until healthy")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=cmd_start_process)
    p = sub.add_parser("restart", help="stop and start named processes, waiting until healthy")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=cmd_restart)
    p = sub.add_parser("consul-seed", help="write the cluster settings and object names into Consul KV")
    p.add_argument("--consul", default="127.0.0.1:8500", help="agent host:port (default 127.0.0.1:8500)")
    p.add_argument("--cluster-name", default="lab", help="Hazelcast cluster name (default lab)")
    p.set_defaults(func=cmd_consul_seed)
    p = sub.add_parser("experiment", help="the lab's Task 3/4 run: POST msg1..msgN, show who got what")
    p.add_argument("--count", type=int, default=10, help="messages to post (default 10)")
    p.add_argument("--facade", default=None, help="which facade copy to post through (default facade-1)")
    p.add_argument("--lang", choices=["en", "uk"], default=None,
                   help="the tables' language: en (default) or uk; LAB_LANG sets it too")
    p.set_defaults(func=cmd_experiment)
    p = sub.add_parser("bench", help="throughput, latency, CPU per message, GET cost, start-up and memory")
    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("drill", help="SIGKILL what a drill names, check nothing is lost (`labctl drill list`)")
    p.add_argument("name", metavar="NAME", choices=["list", *DRILLS], help=f"list, {', '.join(DRILLS)}")
    p.add_argument("--compose-project", default=None,
                   help="drive the containers of this Docker Compose project instead of the launcher's processes")
    p.add_argument("--cluster-name", default="lab", help="the Compose deployment's cluster name (default lab)")
    p.add_argument("--repeat", type=_repeat_count, default=1, metavar="N",
                   help="run the drill N times back to back (1-20) and end with a table of the runs; exit 1 if any "
                        "failed (with --chart, one chart per run: FILE-1.png, ...)")
    p.add_argument("--chart", type=Path, default=None, metavar="FILE",
                   help="also write a PNG timeline: POSTs answered 201, 503 or not at all per second, each kill, "
                        "freeze, thaw, stop or start marked")
    p.set_defaults(func=cmd_drill)
    p = sub.add_parser("net", help="cut, slow down or make lossy the links between hosts (a system started with "
                                   "--hosts): partition, heal, delay, loss, status")
    add_net_arguments(p)
    p.set_defaults(func=cmd_net)
    p = sub.add_parser("lab", help="walk through a lab of the course on its own system, step by step "
                                   "(`labctl lab list`; e.g. `labctl lab 3 --report reports`)")
    add_lab_arguments(p)
    p.set_defaults(func=cmd_lab)
    p = sub.add_parser("mutate", help="break each guarantee's key code in a copy of the repo: its tests must fail "
                                      "(minutes; make test runs the --fast ones)")
    add_mutate_arguments(p)
    p.set_defaults(func=cmd_mutate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "refuse") and (why := _refused(args)):
        args.refuse(why)  # the command's usage line and the reason, exit 2: nothing started
    try:
        return args.func(args)
    except ControlError as err:
        print(f"labctl {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
