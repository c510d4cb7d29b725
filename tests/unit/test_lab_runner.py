"""The lab runner without a cluster: prompts, q, failed checks, the system always stopped, the report, refusals."""

import re

import pytest

from labctl import cli
from labctl.lab.actions import words
from labctl.lab.catalog import find
from labctl.lab.command import run_lab
from labctl.lab.framework import Lab, LabUnavailable, Result, Step, Table
from labctl.lab.i18n import Catalogue
from labctl.lab.runner import Options
from labctl.launcher import LauncherError, Topology


class FakeSystem:
    """Stands in for the launcher's System: records starts and stops, answers one healthy facade."""

    def __init__(self, run_dir, refuse: str | None = None):
        self.run_dir = run_dir
        self.refuse = refuse
        self.started: list[Topology] = []
        self.stops = 0

    def start(self, topology, *, timeout, progress):
        if self.refuse:
            raise LauncherError(self.refuse)
        self.started.append(topology)

    def stop(self):
        self.stops += 1

    def names(self, kind=None):
        return ["facade-1"]

    def url(self, name):
        return "http://127.0.0.1:1"


class FakeCatalogue(Catalogue):
    """Every text is its key (and its fields), so a test reads what the runner said without a language."""

    def __init__(self):
        self.language = "fake"
        self.texts = {}

    def __call__(self, key, **fields):
        return key + "".join(f" {name}={value}" for name, value in sorted(fields.items()))


def seen_step(run):
    return Result(Table(("A", "B"), [(1, "x")]), {"fact": 42})


def failed_step(run):
    run.expect(False, "expect.something", "something else")


LAB = Lab(9, None, lambda offset: Topology(port_offset=offset),
          (Step("one", "curl {facade}/facade", seen_step), Step("two", "labctl kill member-2", failed_step)))


def run(tmp_path, answers=(), *, interactive=True, report=None, refuse=None):
    lines: list[str] = []
    pending = list(answers)

    def ask(prompt):
        lines.append(prompt)
        answer = pending.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    system = FakeSystem(tmp_path, refuse)
    code = run_lab(LAB, system, FakeCatalogue(), Options(interactive=interactive, report_dir=report, port_offset=7),
                   lines.append, ask)
    return code, "\n".join(lines), system


def test_enter_runs_a_step_and_q_stops_before_the_next_with_the_system_stopped(tmp_path):
    code, said, system = run(tmp_path, ["", "q"])
    assert code == 0
    assert system.started[0].port_offset == 7 and system.stops == 1
    assert "run.step number=1 title=lab9.one.title total=2" in said
    assert "$ curl http://127.0.0.1:1/facade" in said
    assert said.count("run.prompt") == 2
    assert "lab9.one.why fact=42" in said and "run.done_stopped" in said
    assert "something else" not in said  # step two never ran


def test_a_step_that_does_not_see_what_it_expects_stops_the_lab_with_exit_1(tmp_path):
    code, said, system = run(tmp_path, interactive=False)
    assert code == 1 and system.stops == 1
    assert "run.prompt" not in said
    assert "run.failed expected=expect.something seen=something else" in said


def test_ctrl_c_at_a_prompt_stops_the_system(tmp_path):
    code, said, system = run(tmp_path, [KeyboardInterrupt()])
    assert code == 130 and system.stops == 1


def test_a_refused_start_exits_2_and_stops_nothing_it_did_not_start(tmp_path):
    code, said, system = run(tmp_path, interactive=False, refuse="ports already in use: facade-1 (8080)")
    assert code == 2 and system.stops == 0  # a system already running there is someone else's
    assert "error.cannot_start reason=ports already in use: facade-1 (8080)" in said


def test_the_report_keeps_each_step_its_command_its_output_and_the_verdict(tmp_path):
    code, _, _ = run(tmp_path, interactive=False, report=tmp_path / "report")
    text = (tmp_path / "report" / "lab-9.md").read_text()
    assert code == 1
    assert "## 1. lab9.one.title" in text and "$ curl http://127.0.0.1:1/facade" in text
    assert "| A | B |" in text and "| 1 | x |" in text
    assert "## 2. lab9.two.title" in text
    assert "report.failed expected=expect.something seen=something else" in text


@pytest.mark.parametrize("argv, says", [
    (["lab", "2"], "there is no lab 2"),
    (["lab", "3", "--grpc"], "lab 3 has no --grpc variant"),
    (["lab", "1", "--grpc", "--kafka"], "give one variant at most"),
])
def test_an_unknown_lab_or_variant_exits_2_naming_the_labs(argv, says, tmp_path, capsys):
    assert cli.main(["--run-dir", str(tmp_path), *argv]) == 2
    assert says in capsys.readouterr().out
    assert not (tmp_path / "state.json").exists()


def test_a_lab_whose_build_is_missing_exits_2_naming_the_command_that_builds_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert cli.main(["--run-dir", str(tmp_path), "lab", "5", "--yes"]) == 2
    assert "python -m labctl.deps consul" in capsys.readouterr().out
    assert cli.main(["--run-dir", str(tmp_path), "lab", "4", "--kafka", "--yes"]) == 2
    assert "python -m labctl.deps kafka" in capsys.readouterr().out
    assert not (tmp_path / "state.json").exists()


def test_the_list_names_every_lab_and_variant_in_the_language_asked(capsys):
    assert cli.main(["lab", "list", "--lang", "uk"]) == 0
    listed = capsys.readouterr().out
    assert [line.split("  ")[0] for line in listed.splitlines()[2:]] == ["1", "1 --grpc", "3", "4", "4 --kafka", "5"]
    assert "Лабораторна 3" in listed


def test_find_names_the_variant_asked():
    t = Catalogue("en")
    assert find("4", grpc=False, kafka=True, t=t).topology(0).queue == "kafka"
    assert find("1", grpc=True, kafka=False, t=t).topology(0).transport == "grpc"
    with pytest.raises(LabUnavailable, match="no lab 7"):
        find("7", grpc=False, kafka=False, t=t)


def test_words_shortens_runs_of_numbered_messages():
    assert words(["msg3", "msg1", "msg2", "msg10", "q5", "load9-1", "load9-2", "load9-3", "x"]) == \
        "x load9-1..3 msg1..3 msg10 q5"
    assert re.fullmatch(r"msg1 msg4\.\.7 msg9", words(["msg9", "msg4", "msg5", "msg6", "msg7", "msg1"]))
