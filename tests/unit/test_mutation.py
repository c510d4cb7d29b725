"""labctl mutate's own logic: the copy it works in, applying a mutation there and refusing one that no longer
fits the code, and reading pytest's outcome. (Running the mutations themselves takes minutes: `make mutate`.)"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.mutation import (
    MUTATIONS,
    Edit,
    Mutation,
    MutationError,
    PytestRun,
    apply,
    copy_repository,
    failed_tests,
    module_of,
    verdict,
)

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


def mutation(*edits: Edit) -> Mutation:
    return Mutation("put", "stored once", "pkg/store.py", edits, ("tests/x.py",))


def test_the_copy_holds_tracked_and_untracked_files_but_not_ignored_ones(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    assert (copy / "pkg" / "store.py").read_text() == SOURCE
    assert (copy / "pkg" / "new.py").exists()
    assert not (copy / "var").exists()


def test_a_mutation_changes_the_copy_only_and_names_the_line_it_changed(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    line = apply(mutation(Edit("existing = m.put_if_absent(k, v)", "existing = m.put(k, v)")), copy)
    assert line == 2
    assert "m.put(k, v)" in (copy / "pkg" / "store.py").read_text()
    assert (repo / "pkg" / "store.py").read_text() == SOURCE


def test_edits_apply_in_order_and_the_line_is_the_first_one_changed(repo, tmp_path):
    copy = copy_repository(repo, tmp_path / "copy")
    moved = mutation(Edit("    existing", "    m.commit()\n    existing"), Edit("    return existing\n", ""))
    assert apply(moved, copy) == 2
    assert (copy / "pkg" / "store.py").read_text() == \
        "def store(m, k, v):\n    m.commit()\n    existing = m.put_if_absent(k, v)\n"


@pytest.mark.parametrize("old", ["existing = m.put(k, v)", "existing"], ids=["not found", "found more than once"])
def test_a_mutation_whose_text_is_not_found_exactly_once_is_refused_and_changes_nothing(repo, tmp_path, old):
    copy = copy_repository(repo, tmp_path / "copy")
    with pytest.raises(MutationError, match="update the mutation"):
        apply(mutation(Edit("def store", "def stored"), Edit(old, "x")), copy)
    assert (copy / "pkg" / "store.py").read_text() == SOURCE


def test_every_mutation_fits_the_code_as_it_is_and_names_tests_that_exist(tmp_path):
    for m in MUTATIONS:
        target = tmp_path / m.name / m.path
        target.parent.mkdir(parents=True)
        shutil.copy(ROOT / m.path, target)
        assert apply(m, tmp_path / m.name) > 0
        assert target.read_text() != (ROOT / m.path).read_text()
        for test in m.tests:
            module, _, name = test.partition("::")
            source = (ROOT / module).read_text()
            assert not name or re.search(rf"^def {re.escape(name)}\(", source, re.M), f"{m.name}: no {test}"


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
    assert module_of("messages_service/adapters.py") == "messages_service.adapters"
    assert module_of("pkg/__init__.py") == "pkg"
    assert module_of("hazelcast/member.yaml") is None
