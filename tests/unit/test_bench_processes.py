"""Process accounting (scripts/labctl/processes.py) against real processes: this test's own and children it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from labctl.processes import ProcessMeter, alive, carries, private_kb, to_ticks, tree_pids, wait_gone

# burns CPU, then holds 60 MB for a moment and frees it, then starts a grandchild; says each step on stdout
CHILD = """
import subprocess, sys, time
began = time.process_time()
while time.process_time() - began < 0.3:
    pass
held = bytearray(60 * 1024 * 1024)
for i in range(0, len(held), 4096):
    held[i] = 1
del held
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(grandchild.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def child():
    process = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    grandchild = int(process.stdout.readline())
    yield process, grandchild
    for pid in (grandchild, process.pid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    process.wait()
    wait_gone(grandchild, 5)


def test_a_tree_is_the_process_and_everything_below_it(child):
    process, grandchild = child
    assert sorted(tree_pids(process.pid)) == sorted([process.pid, grandchild])
    assert process.pid in tree_pids(os.getpid()) and grandchild in tree_pids(os.getpid())
    assert tree_pids(grandchild) == [grandchild]


def test_a_trees_cpu_ticks_count_what_its_processes_spent(child):
    process, _ = child
    own = os.times()
    ticks = ProcessMeter().cpu_ticks({"child": process.pid, "me": os.getpid()})
    assert ticks["child"] >= to_ticks(0.25)  # it burnt 0.3 s
    assert ticks["me"] >= ticks["child"] + to_ticks(own.user + own.system) - 2


def test_peak_memory_keeps_the_peak_of_memory_already_freed_and_the_private_pages(child):
    process, grandchild = child
    memory = ProcessMeter().peak_memory({"child": process.pid}, {"child": "facade"})["child"]
    assert memory.kind == "facade" and memory.pid == process.pid
    assert memory.peak_kb >= 60 * 1024  # freed since, still its peak
    assert list(memory.children_peak_kb) == [str(grandchild)] and memory.children_peak_kb[str(grandchild)] > 0
    assert 0 < memory.private_kb[str(process.pid)] < memory.peak_kb
    assert memory.service_peak_kb() >= memory.peak_kb


def test_machine_cpu_grows_busy_while_this_process_works():
    meter = ProcessMeter()
    busy, total = meter.machine_cpu()
    began = time.process_time()
    while time.process_time() - began < 0.2:
        pass
    busy_after, total_after = meter.machine_cpu()
    assert busy_after - busy >= to_ticks(0.15)
    assert total_after - total >= busy_after - busy


def test_whose_a_process_is_comes_from_its_environment():
    name, value = next(iter(os.environ.items()))
    assert carries(os.getpid(), {name: value})
    assert not carries(os.getpid(), {"LAB_RUN_ID": "not-this-run"})


def test_a_killed_child_is_gone_once_reaped(child):
    process, _ = child
    assert alive(process.pid)
    process.kill()
    assert wait_gone(process.pid, 5) and not alive(process.pid)
    process.wait(5)  # wait_gone may see it exited (a zombie) a moment before its waitpid reaps it
    assert private_kb(process.pid) is None
