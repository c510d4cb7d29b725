"""Fixtures shared by the integration, end-to-end and drill suites: real systems through the launcher; the
Hazelcast client fixes the services apply, for the clients tests make; each test's time limit by its suite;
and under CI (CI=true) no test may be skipped or xfailed: it fails instead."""

from __future__ import annotations

import os
import uuid
import warnings

import pytest

with warnings.catch_warnings():  # the client's reactor imports asyncore, deprecated in Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from lab_common import hazelcast_fixes

hazelcast_fixes.apply()  # the clients tests make behave as the services' (each service applies it itself)

# Seconds a test may take, set-up and tear-down included (a module's system starts in its first test): the
# default (pyproject.toml, 120 s) for unit and deploy tests, these for the suites that start systems. Each is
# about twice the longest its suite's code can wait: a start (120-180 s), then a drill's or a compose
# bring-up's own bounded waits (the compose build 300 s and health 240 s; the bench smoke run 400 s); deploy:
# building kustomize when make test has not (45 s cold on an idle machine).
LIMITS = {"deploy": 600, "integration": 300, "consul": 600, "e2e": 900, "drill": 900, "compose": 1500}


def limit_of(item: pytest.Item) -> int | None:
    """The longest limit of the suites a test belongs to (None: the default); an explicit timeout mark wins."""
    if item.get_closest_marker("timeout"):
        return None
    return max((seconds for marker, seconds in LIMITS.items() if item.get_closest_marker(marker)), default=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        seconds = limit_of(item)
        if seconds is not None:
            item.add_marker(pytest.mark.timeout(seconds))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _failed_instead(report, what: str, why: str) -> None:
    report.outcome = "failed"
    report.longrepr = f"{what} under CI=true, where every test must run: {why}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skip (a missing tool, say) or an xfail is a failure, with its reason."""
    report = (yield).get_result()
    if not in_ci():
        return
    if hasattr(report, "wasxfail"):
        _failed_instead(report, "xfailed", report.wasxfail or "no reason given")
        del report.wasxfail
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _failed_instead(report, "skipped", reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at collection (pytest.importorskip, a module-level skip) fails under CI too."""
    report = (yield).get_result()
    if in_ci() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _failed_instead(report, "skipped", reason)


@pytest.fixture
def unique_name(request) -> str:
    """A map/queue name no other test uses, so tests never share state."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
