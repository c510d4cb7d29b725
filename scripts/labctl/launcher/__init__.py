"""The launcher: the whole system on this machine as local processes (topology: what is started how;
system: starting, watching and stopping it)."""

from labctl.deps import ROOT
from labctl.launcher.system import DEFAULT_RUN_DIR, LauncherError, System, seed_consul_kv
from labctl.launcher.topology import Process, State, Topology, plan

__all__ = ["DEFAULT_RUN_DIR", "ROOT", "LauncherError", "Process", "State", "System", "Topology", "plan",
           "seed_consul_kv"]
