"""`labctl bench`: its options, and one run from start to the saved JSON and chart."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from lab_common.contracts import QUEUES, TRANSPORTS
from labctl.bench.chart import save_chart
from labctl.bench.machine import loadavg, machine_info
from labctl.bench.member_ops import PROFILER_PERIOD_S, DiagnosticsLogs, clear_diagnostics, diagnostics_options
from labctl.bench.report import report_tables
from labctl.bench.results import BenchResults, Startup
from labctl.bench.run import Bench, Plan
from labctl.bench.systems import OtherCheckout, Side, start_own_system, stop_own_system
from labctl.bench.targets import target_rows
from labctl.launcher import ROOT, System, Topology

DEFAULT_OUT = ROOT / "bench-results"
DEFAULT_BENCH_RUN_DIR = ROOT / "var" / "bench-run"
DEFAULT_AGAINST_RUN_DIR = ROOT / "var" / "bench-run-a"

Out = Callable[[str], None]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from err
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def _pair_of(choices: tuple[str, ...], what: str) -> Callable[[str], tuple[str, str]]:
    """A parser of "A,B": two different values of `choices`, A's first."""

    def parse(text: str) -> tuple[str, str]:
        values = tuple(v.strip() for v in text.split(","))
        if len(values) != 2 or not set(values) <= set(choices) or values[0] == values[1]:
            raise argparse.ArgumentTypeError(f"expected two different {what} of {', '.join(choices)} "
                                             f"separated by a comma (A,B), got {text!r}")
        return values

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attach", action="store_true",
                        help="measure the system running from labctl --run-dir (default var/run), not start one")
    parser.add_argument("--duration", type=float, default=None, help="seconds per client count (default 10)")
    parser.add_argument("--levels", type=_int_list, default=None, help="client counts (default 1,8,32,64)")
    parser.add_argument("--sizes", type=_int_list, default=None,
                        help="stored-message counts for the GET figures (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 s per level, sizes 1000,10000, fewer samples, no slow clients")
    parser.add_argument("--e2e-samples", type=int, default=None, help="queue latency samples (default 100)")
    parser.add_argument("--fill-clients", type=int, default=32, help="clients that fill the store (default 32)")
    parser.add_argument("--fill-budget", type=float, default=1800.0,
                        help="seconds the fills (A's too, with --against) may take in all before the sizes are "
                             "measured as reached (default 1800)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the floor: each part of a POST alone at 32 concurrent callers, as CPU "
                             "per operation (about 30 s more; its two servers take the first free ports from "
                             "8060 + the system's port offset), and report the POST's CPU as a multiple of it")
    parser.add_argument("--floor-seconds", type=float, default=3.0, help="seconds per part of the floor (default 3)")
    parser.add_argument("--floor-batches", type=_int_list, default=None,
                        help="consumer batch sizes the floor measures a transaction at (default 1,10,50)")
    parser.add_argument("--slow-clients", type=int, default=None,
                        help="connections that send a POST's headers a byte a second, never finishing, during one "
                             "more 32-client level (the largest level if 32 is not one; default 64; 0 = off; off "
                             "with --quick)")
    parser.add_argument("--member-ops", action="store_true",
                        help="also count the operations the members run per acknowledged POST, by operation class "
                             "(client tasks, partition and other operations, backups), around the 32-client level "
                             "(the largest level if 32 is not one), from Hazelcast's operation profiler: the bench's "
                             "system starts with diagnostics on, dumped every second into <bench run dir>/diagnostics "
                             "(emptied first), so its members' CPU figures include the profiler's cost. Needs the "
                             "bench's own system: not with --attach or --against")
    parser.add_argument("--against", type=Path, default=None, metavar="PATH",
                        help="A/B: also start the system of another checkout of the project at PATH (say a worktree "
                             "of the previous main), with its own code, and alternate the POST levels between it "
                             "(A) and this checkout's system (B)")
    parser.add_argument("--transports", type=_pair_of(TRANSPORTS, "transports"), default=None, metavar="A,B",
                        help="A/B of the facade's transport to logging: two systems of this checkout, A started "
                             "with --transport A and B (the bench's own) with --transport B, e.g. http,grpc; their "
                             "POST levels alternate as with --against (not with --against, --attach or "
                             "--member-ops)")
    parser.add_argument("--queues", type=_pair_of(QUEUES, "queues"), default=None, metavar="A,B",
                        help="A/B of the channel facade -> messages: two systems of this checkout, A started with "
                             "--queue A and B (the bench's own) with --queue B, e.g. hazelcast,kafka (one broker); "
                             "their POST levels alternate as with --against, and each side's queue latency is "
                             "measured (not with --against, --attach, --transports or --member-ops)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the A/B POST levels (default 2)")
    parser.add_argument("--against-port-offset", type=int, default=None,
                        help="port offset of A's system (default: --port-offset + 100)")
    parser.add_argument("--against-run-dir", type=Path, default=DEFAULT_AGAINST_RUN_DIR,
                        help="run dir of A's system (default var/bench-run-a)")
    parser.add_argument("--against-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable A's system starts with (repeatable): e.g. --against . "
                             "--against-env LAB_METRICS=false compares this code with and without its metrics")
    parser.add_argument("--status-page", action="store_true",
                        help="during B's POST levels a client asks the facade's /status.json every second, as "
                             "an open status page does (with --against: the page's cost as B against A)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where JSON and PNG go (default bench-results/)")
    parser.add_argument("--server", choices=["granian", "gunicorn", "dev"], default="granian",
                        help="the HTTP server of the system the bench starts (default granian; gunicorn to "
                             "compare)")
    parser.add_argument("--port-offset", type=int, default=3_000,
                        help="port offset of the system the bench starts (default 3000: every port stays below "
                             "the kernel's ephemeral range, 32768 and up)")
    parser.add_argument("--bench-run-dir", type=Path, default=DEFAULT_BENCH_RUN_DIR,
                        help="run dir of the system the bench starts (default var/bench-run)")


def plan_from_args(args) -> Plan:
    quick = args.quick
    return Plan(
        levels=tuple(args.levels or (1, 8, 32, 64)),
        duration_s=args.duration if args.duration is not None else (2.0 if quick else 10.0),
        sizes=tuple(sorted(args.sizes or ((1000, 10_000) if quick else (1000, 10_000, 100_000)))),
        e2e_samples=args.e2e_samples if args.e2e_samples is not None else (30 if quick else 100),
        full_get_samples=5 if quick else 20,
        paged_get_samples=20 if quick else 50,
        idle_s=1.0 if quick else 3.0,
        fill_clients=args.fill_clients,
        fill_budget_s=args.fill_budget,
        floor=args.floor,
        floor_seconds=args.floor_seconds,
        floor_batches=tuple(args.floor_batches or (1, 10, 50)),
        slow_clients=args.slow_clients if args.slow_clients is not None else (0 if quick else 64),
        rounds=max(1, args.rounds),
        member_ops=args.member_ops,
        member_ops_period_s=PROFILER_PERIOD_S,
        status_page=args.status_page,
        transports=tuple(args.transports or ()),
        queues=tuple(args.queues or ()),
    )


def options_problem(args) -> str:
    """Why these options cannot run together, or ""."""
    for option, given in (("--transports", args.transports), ("--queues", args.queues)):
        if given and (args.against or args.attach):
            return (f"{option} starts both systems of this checkout itself: drop "
                    + ("--against" if args.against else "--attach"))
    if args.transports and args.queues:
        return "--transports and --queues are two different A/B runs: give one of them"
    return member_ops_problem(args)


def member_ops_problem(args) -> str:
    """Why --member-ops cannot run with these options, or ""."""
    if not args.member_ops:
        return ""
    if args.attach:
        return ("--member-ops needs the bench's own system, started with Hazelcast's diagnostics on; an attached "
                "system's members run without them: drop --attach")
    if args.against or args.transports or args.queues:
        option = "--against" if args.against else "--transports" if args.transports else "--queues"
        return (f"--member-ops cannot be combined with {option}: only B's members would pay for the "
                f"operation profiler, and the A/B comparison would not be fair; run it without {option}")
    return ""


def run_bench(args, out: Out = print) -> int:
    problem = options_problem(args)
    if problem:
        out(f"labctl bench: {problem}")
        return 2
    plan = plan_from_args(args)
    started = datetime.now(UTC)
    results = BenchResults(command=[Path(sys.argv[0]).name, *sys.argv[1:]], started_at=started.isoformat(),
                           mode="attach" if args.attach else "own system", plan=dataclasses.asdict(plan),
                           machine=machine_info(), load_before=loadavg())
    out(f"load average before: {' '.join(f'{v:.2f}' for v in results.load_before)} "
        f"({results.machine['nproc']} cores)")
    if results.machine["git_uncommitted"]:
        out(f"measuring commit {results.machine['git_commit'][:7]} with uncommitted changes: "
            + ", ".join(results.machine["git_uncommitted"]))
    system = System(args.run_dir if args.attach else args.bench_run_dir)
    diagnostics_dir = system.run_dir.resolve() / "diagnostics"
    results.system = {"run_dir": str(system.run_dir), "stopped": None}
    other = None
    if args.against:
        offset = args.against_port_offset if args.against_port_offset is not None else args.port_offset + 100
        try:
            env = dict(_name_value(text) for text in args.against_env)
        except ValueError as err:
            out(f"labctl bench --against-env: {err}")
            return 2
        other = OtherCheckout(args.against, args.against_run_dir, port_offset=offset,
                              cluster_name=f"bench-a-{uuid.uuid4().hex[:8]}", env=env)
        problem = other.check()
        if problem:
            out(f"labctl bench --against: {problem}")
            return 2
    if args.transports or args.queues:
        offset = args.against_port_offset if args.against_port_offset is not None else args.port_offset + 100
        differs = ("--transport", args.transports[0]) if args.transports else ("--queue", args.queues[0])
        other = OtherCheckout(ROOT, args.against_run_dir, port_offset=offset,
                              cluster_name=f"bench-a-{uuid.uuid4().hex[:8]}",
                              start_options=(*differs, "--server", args.server))

    def stop_on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        if args.attach:
            results.startup = Startup(seconds=None, skipped="attached to a running system: start-up not measured")
        else:
            java_options = ()
            if plan.member_ops:
                clear_diagnostics(diagnostics_dir)
                java_options = diagnostics_options(diagnostics_dir, plan.member_ops_period_s)
            topology = Topology(cluster_name=f"bench-{uuid.uuid4().hex[:8]}", port_offset=args.port_offset,
                                server=args.server, member_java_options=java_options,
                                transport=args.transports[1] if args.transports else "http",
                                queue=args.queues[1] if args.queues else "hazelcast")
            results.startup = start_own_system(system, topology, out)
        results.system["run_id"] = system.state().run_id
        side = Side.read("B", system.run_dir)
        diagnostics = None
        if plan.member_ops:
            results.system["diagnostics_dir"] = str(diagnostics_dir)
            diagnostics = DiagnosticsLogs(diagnostics_dir, {n: side.processes[n].port for n in side.names("member")})
        Bench(side, plan, out, results, other=other, diagnostics=diagnostics).run()
        results.completed = True
    finally:
        # once it is stopping, it stops: another SIGTERM or a Ctrl-C must not leave a system running
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ignored_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        results.load_after = loadavg()
        results.finished_at = datetime.now(UTC).isoformat()
        if other and other.running():  # A is stopped by the bench; this is for a run cut short
            out("\nstopping A...")
            results.system["a"] = other.stop()
        if not args.attach:
            out("\nstopping the bench's system...")
            results.system.update(stop_own_system(system))
            out("stopped." if results.system["stopped"] else
                f"NOT fully stopped: {results.system.get('still_running')}")
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, ignored_int)
        paths = save(results, args.out, started)
    out("")
    for section in report_tables(results):
        out(section + "\n")
    out(f"load average before {results.load_before}, after {results.load_after}")
    out(f"saved {paths[0]}" + (f" and {paths[1]}" if len(paths) > 1 else ""))
    return 0


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"{text!r} is not NAME=VALUE")
    return name, value


def save(results: BenchResults, out_dir: Path, started: datetime) -> list[Path]:
    """The JSON of everything measured (and the targets as judged), and the chart when there are POST levels."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    json_path = stem.with_suffix(".json")
    results.targets = [dict(zip(("what", "measured", "target", "met"), row, strict=True))
                       for row in target_rows(results)]
    json_path.write_text(json.dumps(dataclasses.asdict(results), indent=1, ensure_ascii=False))
    paths = [json_path]
    if results.post:
        save_chart(results, stem.with_suffix(".png"))
        paths.append(stem.with_suffix(".png"))
    return paths
