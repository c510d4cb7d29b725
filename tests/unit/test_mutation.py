"""labctl mutate's own logic: the copy it works in, finding a mutation's code by its pattern and refusing, loudly
and by name, one whose pattern is gone, the fast/full split, and reading pytest's outcome. (Running the mutations
themselves: `make test` the fast ones, `make mutate` all.)"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labctl.mutation import (
    MutationError,
    PytestRun,
    apply,
    copy_repository,
    failed_tests,
    fits,
    module_of,
    run_tests,
    verdict,
)
from labctl.mutation_catalog import MUTATIONS, Edit, Mutation

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "def store(m, k, v):\n    existing = m.put_if_absent(k, v)\n    return existing\n"


@pytest.fixture
def repo(tmp_path) -> Path:
    """A small git repository: a tracked file, an untracked one and an ignored one."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "store.py").write_text(SOURCE)
    (root / ".gitignore").write_text("var/\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "x"], cwd=root,
                   check=True)
    (root / "pkg" / "new.py").write_text("x = 1\n")
    (root / "var").mkdir()
    (root / "var" / "state.json").write_text("{}")
    return root


def mutation(*edits: Edit, name: str = "put") -> Mutation:
    return Mutation(name, "stored once", "pkg/store.py", edits, ("tests/x.py",))


def test_the_copy_holds_tracked_and_untracked_files_but_not_ignored_ones(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    assert (copy / "pkg" / "store.py").read_text() == SOURCE
    assert (copy / "pkg" / "new.py").exists()
    assert not (copy / "var").exists()


def test_a_mutation_changes_the_copy_only_and_names_the_line_it_changed(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    line = apply(mutation(Edit(r"(existing = m\.)put_if_absent(\(k, v\))", r"\1put\2")), copy)
    assert line == 2
    assert "m.put(k, v)" in (copy / "pkg" / "store.py").read_text()
    assert (repo / "pkg" / "store.py").read_text() == SOURCE


def test_edits_apply_in_order_and_the_line_is_the_first_one_changed(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    moved = mutation(Edit(r"^(?P<indent> +)existing", r"\g<indent>m.commit()\n\g<0>"),
                     Edit(r"^ +return existing\n", ""))
    assert apply(moved, copy) == 2
    assert (copy / "pkg" / "store.py").read_text() == \
        "def store(m, k, v):\n    m.commit()\n    existing = m.put_if_absent(k, v)\n"


def test_a_pattern_is_code_not_a_line_number_or_exact_spacing(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    (copy / "pkg" / "store.py").write_text("# moved down\n\n" + SOURCE.replace("m.put_if_absent(k, v)",
                                                                               "m.put_if_absent(k,  v)"))
    assert apply(mutation(Edit(r"put_if_absent\(k,\s*v\)", "put(k, v)")), copy) == 4


@pytest.mark.parametrize("pattern", [r"m\.put\(k, v\)", "existing"], ids=["gone", "found more than once"])
def test_a_mutation_whose_pattern_is_not_found_exactly_once_fails_loudly_by_name_and_changes_nothing(
        repo, tmp_path, pattern):
    copy = copy_repository(repo, tmp_path / "copy")
    broken = mutation(Edit("def store", "def stored"), Edit(pattern, "x"), name="logging-put")
    with pytest.raises(MutationError, match=r"mutation logging-put: pkg/store\.py has [02] matches of .*update the "
                                            "mutation"):
        apply(broken, copy)
    assert (copy / "pkg" / "store.py").read_text() == SOURCE


def test_one_mutation_whose_pattern_is_gone_stops_the_check_before_any_test_runs(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    good = mutation(Edit("put_if_absent", "put"), name="good")
    with pytest.raises(MutationError, match="mutation gone"):
        fits([good, mutation(Edit("no such code", "x"), name="gone")], copy)
    assert (copy / "pkg" / "store.py").read_text() == SOURCE  # the one that fitted was put back


def test_every_mutation_fits_the_code_as_it_is_and_names_tests_that_exist(tmp_path):
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)
    for m in MUTATIONS:
        target = tmp_path / m.name / m.path
        target.parent.mkdir(parents=True)
        shutil.copy(ROOT / m.path, target)
        assert apply(m, tmp_path / m.name) > 0
        assert target.read_text() != (ROOT / m.path).read_text()
        for test in m.tests:
            module, _, name = test.partition("::")
            name = name.partition("[")[0]  # a parametrized test's id: the function, then its parameters
            source = (ROOT / module).read_text()
            assert name and re.search(rf"^def {re.escape(name)}\(", source, re.M), f"{m.name}: no {test}"


def test_a_mutation_is_fast_when_unit_or_integration_tests_catch_it_and_the_fast_run_uses_only_those():
    both = Mutation("m", "b", "f.py", (), ("tests/unit/test_a.py::test_x", "tests/e2e/test_b.py::test_y",
                                           "tests/integration/test_c.py::test_z"))
    assert both.fast and both.fast_tests == ("tests/unit/test_a.py::test_x", "tests/integration/test_c.py::test_z")
    drill = Mutation("d", "b", "f.py", (), ("tests/drills/test_drills.py::test_x",))
    assert not drill.fast and drill.fast_tests == ()


def test_the_promise_has_mutations_on_every_side_and_fast_ones_for_make_test():
    names = {m.name for m in MUTATIONS}
    assert {"logging-put", "consumer-put", "commit-before-record", "no-redelivery", "201-before-logging",
            "offer-before-log", "map-one-backup", "offer-failure-ignored", "offer-refusal-ignored",
            "queue-one-backup", "queue-async-backups", "commit-despite-record-failure", "http-timeout-10s"} <= names
    assert sum(m.fast for m in MUTATIONS) >= 10


def test_a_run_stops_at_the_first_failure_when_asked(tmp_path):
    (tmp_path / "test_two.py").write_text("def test_a():\n    assert False\n\n\ndef test_b():\n    assert False\n")
    run = run_tests(tmp_path, ["test_two.py"], timeout=60, first_failure=True)
    assert verdict(run) == "caught (1 of 1 failed)" and run.failed == ("test_two.py::test_a",)


def test_pytest_outcomes_read_as_caught_not_caught_or_not_run():
    def run(code):
        return PytestRun(code, 1.0, (), "")
    assert verdict(PytestRun(1, 1.0, ("t",), "F.\n1 failed, 1 passed in 1.0s")) == "caught (1 of 2 failed)"
    assert verdict(PytestRun(1, 1.0, ("t",), "E\n1 error in 1.0s")) == "error (1 in setup or teardown)"
    assert verdict(run(0)) == "NOT caught"
    assert verdict(run(None)) == "timed out"
    assert verdict(run(2)) == "error (pytest exit 2)"  # a collection error is no catch
    assert verdict(run(5)) == "error (pytest exit 5)"  # nor is "no tests ran"


def test_the_failed_tests_are_read_from_pytests_summary():
    output = "..F\nFAILED tests/a.py::test_one - assert 1 == 2\nERROR tests/b.py::test_two\n1 failed"
    assert failed_tests(output) == ("tests/a.py::test_one", "tests/b.py::test_two")


def test_a_python_file_is_checked_as_the_module_it_is_imported_as():
    assert module_of("messages_service/adapters/hazelcast.py") == "messages_service.adapters.hazelcast"
    assert module_of("pkg/__init__.py") == "pkg"
    assert module_of("hazelcast/member.yaml") is None


def test_a_lean_run_loads_no_plugin_but_pytest_timeout_whose_limit_still_holds(tmp_path):
    (tmp_path / "test_hangs.py").write_text("import time\nimport pytest\n\n\n@pytest.mark.timeout(1)\n"
                                            "def test_hangs():\n    time.sleep(30)\n")
    run = run_tests(tmp_path, ["test_hangs.py"], timeout=60, first_failure=True, lean=True)
    assert verdict(run) == "caught (1 of 1 failed)" and "Timeout" in run.output
