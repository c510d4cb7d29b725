"""`labctl lab list` and `labctl lab N [--grpc|--kafka] [--yes] [--report DIR] [--lang uk] [--port-offset N]`."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from pathlib import Path

from labctl.deps import consul_binary, kafka_libs
from labctl.lab.catalog import LABS, find
from labctl.lab.framework import Lab, LabFailed, LabUnavailable
from labctl.lab.i18n import LANGUAGES, Catalogue, catalogue
from labctl.lab.report import write_report
from labctl.lab.runner import LabRun, Options, StepRecord, start_system, walk
from labctl.lab.screenshot import capture, chromium
from labctl.launcher import System
from labctl.table import render

EXIT_STOPPED_BY_SIGNAL = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", metavar="N", help="list, or the lab: 1, 3, 4 or 5")
    parser.add_argument("--grpc", action="store_true", help="lab 1 only: the facade logs over gRPC")
    parser.add_argument("--kafka", action="store_true", help="lab 4 only: a Kafka topic in the queue's place")
    parser.add_argument("--yes", "-y", action="store_true", help="run every step without asking (no Enter, no q)")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="write DIR/lab-N.md with the outputs, status-page screenshots and timeline charts")
    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help="the language of every text: en (default) or uk; LAB_LANG sets it too")
    parser.add_argument("--port-offset", type=int, default=0,
                        help="add this to every port (default 0: the ports of the course)")


def _ask(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:  # no terminal to answer from: as if the student pressed q
        return "q"


def run_lab_command(args, run_dir: Path, out: Callable[[str], None]) -> int:
    t = catalogue(args.lang)
    if args.which == "list":
        out(render((t("col.lab"), t("col.what")), [(name, t(lab.key + ".title")) for name, lab in LABS.items()]))
        return 0
    try:
        lab = find(args.which, grpc=args.grpc, kafka=args.kafka, t=t)
        _check_builds(lab, args.report, t)
    except LabUnavailable as err:
        out(str(err))
        return 2
    return run_lab(lab, System(run_dir), t, Options(interactive=not args.yes, report_dir=args.report,
                                                    port_offset=args.port_offset, run_dir=run_dir), out, _ask)


def _check_builds(lab: Lab, report: Path | None, t: Catalogue) -> None:
    """What a lab needs that is built or fetched once per machine, checked before anything starts."""
    topology = lab.topology(0)
    if topology.discovery == "consul" and not consul_binary().exists():
        raise LabUnavailable(t("error.no_consul", path=consul_binary()))
    if topology.queue == "kafka" and not kafka_libs().exists():
        raise LabUnavailable(t("error.no_kafka", path=kafka_libs()))
    if report is not None and chromium() is None:
        raise LabUnavailable(t("error.no_chromium"))


def run_lab(lab: Lab, system: System, t: Catalogue, options: Options, out: Callable[[str], None],
            ask: Callable[[str], str], controller=None) -> int:
    """Start the lab's system, walk its steps, write the report; the system is stopped whatever happens.
    `controller` stands in for the system while the steps run (tests pass a fake that will not stop a copy)."""
    out(f"{t(lab.key + '.title')}\n{t(lab.key + '.intro')}")
    began = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    records: list[StepRecord] = []
    failure, stopped, code = None, False, 0
    try:
        try:  # a refused or failed start leaves nothing behind: the launcher stops what it had started
            start_system(system, lab.topology(options.port_offset), t, out)
        except LabUnavailable as err:
            out(str(err))
            return 2
        except KeyboardInterrupt:
            out(t("run.done_stopped"))
            return EXIT_STOPPED_BY_SIGNAL
        try:
            run = LabRun(lab, controller or system, t, run_dir=options.run_dir)
            stopped = walk(lab, run, options, out, ask, capture if options.report_dir else None, records)
        except LabFailed as err:
            failure, code = err, 1
            out("")
            out(t("run.failed", expected=err.expected, seen=err.seen))
        except KeyboardInterrupt:
            stopped, code = True, EXIT_STOPPED_BY_SIGNAL
        finally:
            out(t("run.stopping"))
            system.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if options.report_dir is not None:
        _charts(records, options.report_dir, lab, t)
        path = write_report(options.report_dir, lab, t, records, failure=failure, stopped=stopped,
                            seconds=time.monotonic() - began)
        out(t("run.report", path=path))
    out(t("run.done_stopped") if stopped else t("run.done_failed") if failure else
        t("run.done_passed", seconds=f"{time.monotonic() - began:.0f}"))
    return code


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _charts(records: list[StepRecord], directory: Path, lab: Lab, t: Catalogue) -> None:
    """A timeline chart for each fault step that ran (scripts/labctl/timeline.py)."""
    from labctl.timeline import SERIES, Timeline, save_timeline

    words = {key: t("chart." + key.replace(" ", "_")) for key in ("xlabel", "ylabel", *(s[0] for s in SERIES))}
    for record in records:
        if record.load:
            path = directory / f"{lab.key}-step{record.number}-timeline.png"
            save_timeline(Timeline(record.load, record.marks), path, t("report.chart", number=record.number), words)
            record.chart = path
