"""deploy/k8s rendered once per session by the pinned kustomize (scripts/labctl/deps.py builds it once per machine)."""

import subprocess

import pytest
import yaml

from labctl.deps import ROOT, ensure_kustomize

K8S = ROOT / "deploy" / "k8s"
MODES = {"config-server": K8S, "consul": K8S / "consul"}


def render(folder) -> list[dict]:
    built = subprocess.run([str(ensure_kustomize()), "build", str(folder)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every object of each mode's kustomization, as kustomize renders it."""
    return {mode: render(folder) for mode, folder in MODES.items()}


def find(objects: list[dict], kind: str, name: str) -> dict:
    """The object of that kind whose name is `name` (a generated ConfigMap's name carries a hash suffix)."""
    found = [o for o in objects if o["kind"] == kind and (o["metadata"]["name"] == name or (
        kind == "ConfigMap" and o["metadata"]["name"].rsplit("-", 1)[0] == name))]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only
