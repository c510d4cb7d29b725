"""Running a lab: start its system with the launcher, walk its steps (asking before each unless told to go
straight through), check each, write the report, and always stop the system at the end."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from labctl.control import ControlError, Controller
from labctl.lab.framework import Lab, LabFailed, LabUnavailable, Result, Step, Table
from labctl.lab.i18n import Catalogue
from labctl.lab.load import PacedLoad
from labctl.launcher import DEFAULT_RUN_DIR, System, Topology
from labctl.load import Outcome
from labctl.table import render

HTTP_TIMEOUT = 10.0  # every call a step makes is bounded
START_TIMEOUT = 120.0  # seconds a restarted process has to be healthy (a Kafka broker on a busy machine: 60+)
LOAD_LEAD = 1.0  # seconds of background load before a fault step acts, and after: the chart's before and after

Out = Callable[[str], None]
Ask = Callable[[str], str]


@dataclass
class StepRecord:
    """What the report keeps of a step that ran (or failed)."""

    number: int
    title: str
    command: str
    table: Table | None = None
    why: str = ""
    look: str = ""
    screenshot: Path | None = None
    chart: Path | None = None
    load: list[Outcome] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    failure: LabFailed | None = None


class LabRun:
    """One lab being run: its system, its texts, and what its steps posted and marked."""

    def __init__(self, lab: Lab, system: Controller, t: Catalogue, *, run_dir: Path = DEFAULT_RUN_DIR):
        self.lab = lab
        self.system = system
        self.t = t
        self.run_dir = Path(run_dir)
        self.posted: dict[str, str] = {}  # uuid -> msg of every POST of the lab answered 201
        self.memo: dict[str, object] = {}  # what one step found out for a later one (the queue's owner, say)
        self.marks: list[tuple[float, str]] = []
        self.http = requests.Session()

    # --- addresses and commands ---

    def url(self, name: str) -> str:
        return self.system.url(name)

    @property
    def facade(self) -> str:
        return self.url("facade-1")

    def labctl(self, arguments: str) -> str:
        """The labctl command a student types (naming the run dir only when it is not the default)."""
        run_dir = "" if self.run_dir.resolve() == DEFAULT_RUN_DIR.resolve() else f" --run-dir {self.run_dir}"
        return f"labctl{run_dir} {arguments}"

    def member_name(self, address: str | None) -> str | None:
        """member-N for a member's host:port."""
        return {a: n for n, a in self.system.hazelcast_cluster()[1].items()}.get(address or "")

    # --- talking to the system ---

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, timeout=HTTP_TIMEOUT)

    def get_json(self, url: str):
        response = self.get(url)
        response.raise_for_status()
        return response.json()

    def post(self, url: str, data: dict | None = None, *, json_body: dict | None = None,
             headers: dict | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
        """A POST; one a facade answered 201 is kept in `posted`, for the checks of later steps."""
        response = self.http.post(url, data=data, json=json_body, headers=headers, timeout=timeout)
        if response.status_code == 201 and "logged_by" in response.text:
            body = response.json()
            if isinstance(body, dict) and "uuid" in body and "logged_by" in body:
                self.posted[body["uuid"]] = body.get("msg", "")
        return response

    def status_page(self) -> dict:
        """What the status page shows right now (its /status.json)."""
        return self.get_json(self.facade + "/status.json")

    # --- checks and faults ---

    def expect(self, ok: bool, key: str, seen: str, **fields: object) -> None:
        """Stop the lab unless `ok`: the catalogue's `key` says what was expected, `seen` what was seen."""
        if not ok:
            raise LabFailed(self.t(key, **fields), seen)

    def mark(self, label: str, at: float | None = None) -> float:
        at = time.time() if at is None else at
        self.marks.append((at, label))
        return at

    def kill(self, *names: str) -> float:
        """SIGKILL them; the lab stops if one is still running afterwards."""
        at = min(self.system.kill(name) for name in names)
        self.mark(self.t("mark.killed", names=" + ".join(names)), at)
        self._expect_down(names)
        return at

    def stop(self, *names: str) -> None:
        """SIGTERM them (SIGKILL after a bound); the lab stops if one is still running afterwards."""
        for name in names:
            self.system.terminate(name)
        self.mark(self.t("mark.stopped", names=" + ".join(names)))
        self._expect_down(names)

    def _expect_down(self, names: tuple[str, ...]) -> None:
        alive = [name for name in names if self.running(name)]
        self.expect(not alive, "expect.down", self.t("seen.running", names=", ".join(alive)),
                    names=", ".join(names))

    def start(self, *names: str) -> None:
        self.mark(self.t("mark.starting", names=" + ".join(names)))
        for name in names:
            self.system.start_process(name, timeout=START_TIMEOUT)
        self.mark(self.t("mark.started", names=" + ".join(names)))

    def running(self, name: str) -> bool:
        return next(r["running"] for r in self.system.status() if r["name"] == name)


@dataclass(frozen=True)
class Options:
    interactive: bool = True
    report_dir: Path | None = None
    port_offset: int = 0
    run_dir: Path = DEFAULT_RUN_DIR


def start_system(system: System, topology: Topology, t: Catalogue, out: Out) -> None:
    """Start the lab's system; a launcher refusal (busy ports, a system already running) is LabUnavailable."""
    out(t("run.starting", logs=system.run_dir / "logs"))
    began = time.monotonic()
    try:
        system.start(topology, timeout=120, progress=None)
    except ControlError as err:
        raise LabUnavailable(t("error.cannot_start", reason=err)) from err
    out(t("run.healthy", seconds=f"{time.monotonic() - began:.1f}"))


def walk(lab: Lab, run: LabRun, options: Options, out: Out, ask: Ask, shoot: Callable[[str, Path], Path] | None,
         records: list[StepRecord]) -> bool:
    """Every step in turn, each recorded into `records`; answers whether the student stopped it (q). A failed
    check (LabFailed) goes up, its step recorded with it."""
    t = run.t
    for number, step in enumerate(lab.steps, 1):
        title = t(lab.text_key(step, "title"))
        command = step.command(run) if callable(step.command) else step.command.format(**addresses(run))
        out("")
        out(t("run.step", number=number, total=len(lab.steps), title=title))
        out(f"  $ {command}")
        if options.interactive and ask(t("run.prompt")).strip().lower().startswith("q"):
            return True
        record = StepRecord(number, title, command)
        records.append(record)
        try:
            try:
                result = _act(step, run, record)
            except (ControlError, requests.RequestException, ValueError, KeyError) as err:
                raise LabFailed(t("expect.answers"), f"{type(err).__name__}: {err}") from err
        except LabFailed as failure:
            record.failure = failure
            raise
        record.table = result.table
        facts = {**result.facts, "load_posts": len(record.load), "load_failed": sum(1 for o in record.load
                                                                                     if not o.uuid)}
        record.why = t(lab.text_key(step, "why"), **facts)
        record.look = t(lab.text_key(step, "look"), **facts)
        out("")
        out(render(result.table.headers, result.table.rows))
        out("")
        out(t("run.why", text=record.why))
        out(t("run.look", url=run.facade + "/status", text=record.look))
        if step.fault:
            failed = sum(1 for o in record.load if not o.uuid)
            out(t("run.load", posts=len(record.load), failed=failed))
        if options.report_dir is not None and step.screenshot and shoot is not None:
            try:
                record.screenshot = shoot(run.facade + "/status", options.report_dir / f"{lab.key}-step{number}.png")
            except (OSError, subprocess.SubprocessError) as err:  # the lab goes on; the report says what is missing
                out(t("run.no_screenshot", reason=f"{type(err).__name__}: {err}"))
    return False


def _act(step: Step, run: LabRun, record: StepRecord) -> Result:
    if not step.fault:
        return step.act(run)
    marks_before = len(run.marks)
    with PacedLoad(run.facade, f"load{record.number}-") as load:
        time.sleep(LOAD_LEAD)
        try:
            result = step.act(run)
        finally:
            time.sleep(LOAD_LEAD)
            load.stop()
            record.load = load.outcomes
            record.marks = run.marks[marks_before:]
    run.posted.update(load.accepted())
    return result


def addresses(run: LabRun) -> dict[str, str]:
    """The names a step's command template may use: {facade}, {facade2}, {logging1}, {config_server}, {consul}..."""
    found = {}
    for name in run.system.names():
        kind, _, number = name.rpartition("-")
        if number.isdigit():
            found[f"{kind}{number}"] = run.url(name)
        else:
            found[name.replace("-", "_")] = run.url(name)
    found["facade"] = run.facade
    return found
