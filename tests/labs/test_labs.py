"""Every lab of the course run for real, each on its own system: straight through (--yes) passing its own checks,
one with a report in Ukrainian, one interactively under tmux, one whose check fails, one refused."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid

import pytest
from PIL import Image

from labctl.deps import ROOT
from labctl.lab.catalog import LABS
from labctl.lab.command import run_lab
from labctl.lab.i18n import Catalogue
from labctl.lab.runner import Options
from labctl.launcher import System
from tests.helpers import eventually, port_offset

pytestmark = pytest.mark.e2e

PORT_OFFSET = port_offset(9_000)  # the labs run one at a time: facade on 17080, members on 14701-14703
LAB_TIMEOUT = 600


def labctl(run_dir, *arguments: str, timeout: float = LAB_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labctl.cli", "--run-dir", str(run_dir), "lab", *arguments,
                           "--port-offset", str(PORT_OFFSET)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def assert_nothing_left(run_dir) -> None:
    assert not (run_dir / "state.json").exists()
    assert port_free(8080 + PORT_OFFSET) and port_free(8081 + PORT_OFFSET)


@pytest.mark.parametrize("lab", ["1", "1 --grpc", "4", "4 --kafka", "5"])
def test_the_lab_runs_straight_through_and_passes_its_own_checks(lab, tmp_path):
    done = labctl(tmp_path, *lab.split(), "--yes")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    steps = len(LABS[lab].steps)
    assert f"Step {steps}/{steps}:" in done.stdout and "every step passed" in done.stdout
    assert_nothing_left(tmp_path)


def test_the_report_in_ukrainian_has_every_step_real_screenshots_and_charts(tmp_path):
    report = tmp_path / "report"
    done = labctl(tmp_path, "3", "--yes", "--lang", "uk", "--report", str(report))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "усі кроки пройдено" in done.stdout
    text = (report / "lab-3.md").read_text(encoding="utf-8")
    assert text.startswith("# Лабораторна 3") and "**Чому так.**" in text
    assert len(re.findall(r"^## \d+\. ", text, re.M)) == len(LABS["3"].steps)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    screenshots = [link for link in links if "timeline" not in link]
    charts = [link for link in links if "timeline" in link]
    assert len(screenshots) == sum(step.screenshot for step in LABS["3"].steps)
    assert len(charts) == sum(step.fault for step in LABS["3"].steps)
    for link in links:
        assert (report / link).is_file(), link
    for link in screenshots:
        with Image.open(report / link) as image:
            assert image.format == "PNG" and image.size == (1280, 1300)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert (report / link).stat().st_size > 20_000
        assert colours is not None and len(colours) > 50, f"{link} looks blank"  # text, badges and bars
    assert_nothing_left(tmp_path)


def test_a_lab_whose_copy_will_not_stop_exits_1_saying_what_it_expected(tmp_path):
    class FakeStubbornController:
        """The launcher's System, except that it never stops logging-1: the lab's check must catch it."""

        def __init__(self, system: System):
            self._system = system

        def terminate(self, name, timeout=20.0):
            if name != "logging-1":
                self._system.terminate(name, timeout)

        def __getattr__(self, name):
            return getattr(self._system, name)

    system = System(tmp_path)
    said: list[str] = []
    code = run_lab(LABS["1"], system, Catalogue("en"), Options(interactive=False, port_offset=PORT_OFFSET,
                                                                 run_dir=tmp_path),
                   said.append, input, controller=FakeStubbornController(system))
    output = "\n".join(said)
    assert code == 1, output
    assert "LAB FAILED: expected logging-1 not running; seen still running: logging-1" in output
    assert_nothing_left(tmp_path)


def test_a_lab_on_ports_another_system_holds_exits_2_and_starts_nothing(tmp_path):
    with socket.create_server(("127.0.0.1", 8080 + PORT_OFFSET)):
        done = labctl(tmp_path, "1", "--yes", timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ports already in use: facade-1" in done.stdout and "--port-offset" in done.stdout
    assert_nothing_left(tmp_path)


def test_a_lab_run_interactively_waits_for_enter_and_q_stops_it(tmp_path):
    session = f"lab-{uuid.uuid4().hex[:8]}"
    command = (f"{sys.executable} -m labctl.cli --run-dir {tmp_path} lab 1 --port-offset {PORT_OFFSET}; "
               "echo LAB-EXIT=$?; sleep 60")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "60", "-c", str(ROOT), command],
                   check=True)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session, "-S", "-200"], capture_output=True,
                              text=True, check=True).stdout

    try:
        eventually(lambda: "Step 1/5" in screen() and "[Enter] run this step" in screen(), timeout=120, interval=0.5)
        assert "NAME" not in screen()  # the step waits for Enter
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        eventually(lambda: "Step 2/5" in screen(), timeout=30, interval=0.3)
        shown = screen()
        assert "config-server" in shown and "Why: 4 processes" in shown
        assert shown.count("[Enter] run this step") == 2
        subprocess.run(["tmux", "send-keys", "-t", session, "q", "Enter"], check=True)
        eventually(lambda: "LAB-EXIT=0" in screen(), timeout=60, interval=0.3)
        assert "stopped before the end; the system is stopped." in screen()
        assert "Step 3/5" not in screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert_nothing_left(tmp_path)
