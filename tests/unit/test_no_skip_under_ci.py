"""tests/conftest.py's rules, on a small test module run by a pytest of its own: under CI=true a skip (at
collection or in a test) and an xfail fail with their reason; elsewhere they stay skips; every test has a limit."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = '''
import shutil
import pytest

def test_runs():
    pass

@pytest.mark.skipif(shutil.which("no-such-tool-here") is None, reason="no such tool on this machine")
def test_needs_a_tool():
    pass

def test_skips_itself():
    pytest.skip("no curl on this machine")

@pytest.mark.xfail(reason="known to fail")
def test_known_to_fail():
    assert False

@pytest.mark.timeout(1)
def test_hangs():
    import time
    time.sleep(30)
'''
SKIPPED_MODULE = 'import pytest\npytest.importorskip("no_such_module_here")\n'


def run(tmp_path: Path, ci: str | None, module: str = MODULE) -> str:
    (tmp_path / "test_sample.py").write_text(module)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout_method = signal\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", str(tmp_path / "pytest.ini"),
                           "-rA", "-p", "no:cacheprovider", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=90)
    return done.stdout


def test_under_ci_every_skip_and_xfail_is_a_failure_naming_its_reason(tmp_path):
    output = run(tmp_path, "true")
    # a skipif mark is decided in set-up: it counts as an error there; a skip in the test's body as a failure
    assert "3 failed, 1 passed, 1 error in" in output.strip().splitlines()[-1], output[-3000:]
    for reason in ("no such tool on this machine", "no curl on this machine", "known to fail"):
        assert reason in output
    assert "skipped under CI=true" in output and "xfailed under CI=true" in output
    assert "Timeout" in output  # the hanging one stopped at its 1 s limit


def test_under_ci_a_module_skipped_at_collection_stops_the_run_as_an_error(tmp_path):
    output = run(tmp_path, "true", SKIPPED_MODULE)
    assert output.strip().splitlines()[-1].startswith("=") and "1 error" in output.strip().splitlines()[-1]
    assert "skipped under CI=true, where every test must run" in output and "no_such_module_here" in output


def test_outside_ci_a_skip_stays_a_skip(tmp_path):
    last = run(tmp_path, "false").strip().splitlines()[-1]
    assert "1 failed, 1 passed, 2 skipped, 1 xfailed" in last, last


def test_the_suites_that_start_systems_get_longer_limits_than_the_default():
    from tests.conftest import LIMITS
    assert set(LIMITS) == {"deploy", "integration", "consul", "e2e", "drill", "compose"}
    assert min(LIMITS.values()) > 120
