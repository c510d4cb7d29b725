"""`labctl drill NAME --repeat N`: the drill run N times back to back, a table of the runs at the end, exit 1 if
any failed; over a fake drill runner (no system)."""

from __future__ import annotations

import pytest

from labctl import cli
from labctl.drills import Report


def fake_runs(monkeypatch, lost_in: set[int]) -> list[int]:
    runs = []

    def run_drill(name, controller, out):
        runs.append(len(runs) + 1)
        report = Report(name, "a fake drill", posted=100)
        if runs[-1] in lost_in:
            report.lost = ["u1"]
        return report

    monkeypatch.setattr(cli, "run_drill", run_drill)
    return runs


def test_five_runs_back_to_back_end_with_a_table_and_pass_only_if_every_run_passed(monkeypatch, tmp_path, capsys):
    runs = fake_runs(monkeypatch, lost_in={3})
    code = cli.main(["--run-dir", str(tmp_path), "drill", "logging-loss", "--repeat", "5"])
    out = capsys.readouterr().out
    assert runs == [1, 2, 3, 4, 5] and code == 1
    table = out[out.index("logging-loss, 5 runs back to back"):].splitlines()
    assert table[1].split()[:5] == ["RUN", "VERDICT", "ANSWERED", "201", "LOST"]
    lost_column = [line.split()[-3] for line in table[3:8]]
    assert lost_column == ["0", "0", "1", "0", "0"]


def test_one_run_is_the_default_and_prints_no_table(monkeypatch, tmp_path, capsys):
    runs = fake_runs(monkeypatch, lost_in=set())
    assert cli.main(["--run-dir", str(tmp_path), "drill", "logging-loss"]) == 0
    assert runs == [1] and "back to back" not in capsys.readouterr().out


@pytest.mark.parametrize("count", ["0", "21", "two", "-1"])
def test_a_repeat_count_outside_1_to_20_is_refused_before_any_run(monkeypatch, tmp_path, count, capsys):
    runs = fake_runs(monkeypatch, lost_in=set())
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--run-dir", str(tmp_path), "drill", "logging-loss", "--repeat", count])
    assert exit_.value.code == 2 and runs == []
    assert "1 to 20" in capsys.readouterr().err
