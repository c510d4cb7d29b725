"""Lab 3: logging on a Hazelcast distributed map. Three logging copies, each paired with a member, the config
server, the facade; msg1..msg10, who logged what, then copies killed with their members: still all 10."""

from __future__ import annotations

from labctl.lab import actions
from labctl.lab.framework import Lab, Result, Step, Table
from labctl.lab.runner import HTTP_TIMEOUT, LabRun
from labctl.launcher import Topology
from labctl.probe import facade_view, wait_for


def _ten(run: LabRun) -> dict[str, str]:
    return {u: m for u, m in run.posted.items() if m.startswith("msg")}


def copies_empty(run: LabRun) -> Result:
    rows = [(copy, run.url(copy), run.get_json(run.url(copy) + "/logging")["count"])
            for copy in run.system.names("logging")]
    run.expect(all(r[2] == 0 for r in rows), "expect.logging_empty", ", ".join(f"{r[0]}: {r[2]}" for r in rows))
    return Result(Table((run.t("col.copy"), run.t("col.address"), run.t("col.count")), rows), {"copies": len(rows)})


def registry(run: LabRun) -> Result:
    rows = []
    for service in ("logging-service", "messages-service"):
        response = run.get(f"{run.url('config-server')}/services/{service}")
        addresses = response.json().get("addresses", []) if response.status_code == 200 else []
        rows.append((service, response.status_code, " ".join(addresses) or "-"))
    logging_addresses = rows[0][2].split()
    run.expect(len(logging_addresses) == 3, "expect.registry", rows[0][2])
    return Result(Table((run.t("col.service"), run.t("col.status"), run.t("col.addresses")), rows),
                  {"count": len(logging_addresses)})


def post_ten(run: LabRun) -> Result:
    return actions.post_messages(run, [f"msg{i}" for i in range(1, 11)])


def logged(run: LabRun) -> Result:
    return actions.logged_by_copy(run, _ten(run))


def read_all(run: LabRun) -> Result:
    return actions.read_through_facade(run, _ten(run), times=2, with_messages=False)


def _kill_pair(run: LabRun, index: int) -> Result:
    copy, member = f"logging-{index}", f"member-{index}"
    run.kill(copy, member)
    expected = run.posted  # the ten and whatever the background load had answered 201

    def readable() -> bool:
        view = facade_view(run.facade, HTTP_TIMEOUT, run.http)
        return set(expected) <= {e.uuid for e in view.merged}

    _, seconds = wait_for(readable, bool, actions.SETTLE, 0.3)
    result = actions.read_through_facade(run, dict(expected), times=2, with_messages=False)
    live = [m for m in run.status_page()["members"] if m["up"]]
    return Result(result.table, {"copy": copy, "member": member, "count": len(expected),
                                 "seconds": f"{seconds or 0:.1f}", "live": len(live),
                                 "entries": actions.member_entries(run)})


def kill_first(run: LabRun) -> Result:
    return _kill_pair(run, 1)


def kill_second(run: LabRun) -> Result:
    return _kill_pair(run, 2)


LAB = Lab(3, None, lambda offset: Topology(port_offset=offset, cluster_name="lab3", messages=0, queue="none"),
          (Step("start", "labctl start --queue none --messages 0", actions.system_table),
           Step("empty", "curl {logging1}/logging; curl {logging2}/logging; curl {logging3}/logging", copies_empty),
           Step("registry", "curl {config_server}/services/logging-service; "
                            "curl {config_server}/services/messages-service", registry),
           Step("post", 'for i in $(seq 1 10); do curl -X POST -d "msg=msg$i" {facade}/facade; done', post_ten),
           Step("logged", "curl {logging1}/logging", logged, screenshot=True),
           Step("read", "curl {facade}/facade", read_all),
           Step("kill1", lambda run: run.labctl("kill logging-1 member-1") + f"; curl {run.facade}/facade", kill_first,
                fault=True),
           Step("kill2", lambda run: run.labctl("kill logging-2 member-2") + f"; curl {run.facade}/facade",
                kill_second, screenshot=True, fault=True)))
