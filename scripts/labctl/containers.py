"""Containers on this machine kind, with podman: the runtime settings, the images docker-compose.yml names,
and the Docker-compatible API socket that the drills' Docker adapter talks to.

Docker Hub cannot be reached here, so `python:3.11-slim`, `hazelcast/hazelcast:5.6.0` and `hashicorp/consul:1.22.0`
(docker-compose.consul.yml) are STAND-INS built
locally (a Debian base made with debootstrap, then deploy/podman/*.Containerfile) and kept in podman's
storage, once per machine. Builds need no network inside containers beyond Debian's mirror: the project
image installs the services' wheels from a wheelhouse made on the host (cached per machine).

Usage: python -m labctl.containers images   (sets everything up, prints what it built or found)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

from labctl.deps import (
    CONSUL_VERSION,
    ROOT,
    cache_dir,
    ensure_consul,
    ensure_jmx_exporter_jar,
    ensure_member_jar,
    hazelcast_version,
)

PODMAN_DIR = ROOT / "deploy" / "podman"
CONTAINERS_CONF = PODMAN_DIR / "containers.conf"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = "localhost/debian-base:bookworm"
PYTHON_IMAGE = "docker.io/library/python:3.11-slim"
PROJECT_IMAGE = "localhost/facade-lab:latest"  # docker-compose.yml's `image: facade-lab`
PACKAGES = ["podman", "uidmap", "slirp4netns", "fuse-overlayfs", "runc", "debootstrap", "netavark",
            "aardvark-dns", "iptables", "catatonit"]
BUILD_REQUIREMENTS = ["setuptools>=68", "wheel"]
PROJECT_FILES = ["Dockerfile", "pyproject.toml", "README.md", "lab_common", "facade_service", "logging_service",
                 "messages_service", "config_server", "wheels/README.md"]


def hazelcast_image() -> str:
    return f"docker.io/hazelcast/hazelcast:{hazelcast_version()}"


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], check=check, env=podman_env(), text=True,
                          capture_output=capture, **kwargs)


def say(what: str) -> None:
    sys.stderr.write(f"containers: {what}\n")
    sys.stderr.flush()


def ensure_podman() -> None:
    """Debian's podman and what it needs to run containers as root here (once per machine)."""
    if shutil.which("podman") and shutil.which("debootstrap") and shutil.which("iptables"):
        return
    say("installing podman and debootstrap from Debian (once per machine)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], check=True, env=env)


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def image_label(name: str, label: str) -> str | None:
    found = podman("image", "inspect", "--format", f"{{{{index .Labels \"{label}\"}}}}", name,
                   check=False, capture=True)
    value = found.stdout.strip()
    return value if found.returncode == 0 and value and value != "<no value>" else None


def ensure_base() -> None:
    """Debian bookworm, minimal, imported from a debootstrap tree: the root of every stand-in."""
    if image_exists(BASE_IMAGE):
        return
    say(f"building {BASE_IMAGE} with debootstrap (~30 s, once per machine)...")
    with tempfile.TemporaryDirectory(prefix="lab-rootfs-") as rootfs:
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR], check=True,
                       stdout=subprocess.DEVNULL)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        podman("import", "-", BASE_IMAGE, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()


def _build(tag: str, containerfile: Path, context: Path, *, digest: str, build_args: dict[str, str] = ()) -> None:
    """podman build, never pulling; `digest` names the inputs, and an image built from the same ones is kept."""
    if image_label(tag, "lab.inputs") == digest:
        return
    say(f"building {tag}...")
    args = ["build", "--format", "docker", "--pull=never", "--label", f"lab.inputs={digest}",
            "-f", str(containerfile), "-t", tag]
    for key, value in dict(build_args).items():
        args += ["--build-arg", f"{key}={value}"]
    podman(*args, str(context), stdout=subprocess.DEVNULL)


def _digest(*parts: bytes | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
    return sha.hexdigest()[:16]


def ensure_python_standin() -> None:
    containerfile = PODMAN_DIR / "python.Containerfile"
    with tempfile.TemporaryDirectory(prefix="lab-python-") as context:
        _build(PYTHON_IMAGE, containerfile, Path(context), digest=_digest(containerfile.read_bytes()))


def ensure_hazelcast_standin() -> None:
    containerfile = PODMAN_DIR / "hazelcast.Containerfile"
    start = PODMAN_DIR / "hazelcast-start.sh"
    member, agent = ensure_member_jar(), ensure_jmx_exporter_jar()
    digest = _digest(containerfile.read_bytes(), start.read_bytes(), member.name, agent.name)
    with tempfile.TemporaryDirectory(prefix="lab-hazelcast-") as context:
        shutil.copy(member, Path(context) / "hazelcast.jar")
        shutil.copy(agent, Path(context) / "jmx_prometheus_javaagent.jar")
        shutil.copy(start, Path(context) / "hazelcast-start.sh")
        _build(hazelcast_image(), containerfile, Path(context), digest=digest)


def consul_image() -> str:
    return f"docker.io/hashicorp/consul:{CONSUL_VERSION}"


def ensure_consul_standin() -> None:
    containerfile = PODMAN_DIR / "consul.Containerfile"
    binary = ensure_consul()
    digest = _digest(containerfile.read_bytes(), CONSUL_VERSION, str(binary.stat().st_size))
    with tempfile.TemporaryDirectory(prefix="lab-consul-") as context:
        shutil.copy(binary, Path(context) / "consul")
        _build(consul_image(), containerfile, Path(context), digest=digest)


def wheelhouse() -> Path:
    """The services' wheels (runtime dependencies only), made on the host, cached per pyproject.toml."""
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    house = cache_dir() / "wheels" / _digest(pyproject, *BUILD_REQUIREMENTS)
    if (house / ".complete").exists():
        return house
    say("making the services' wheelhouse on the host (once per pyproject.toml)...")
    house.mkdir(parents=True, exist_ok=True)
    # the services' dependencies, and what building the project itself needs (pyproject.toml's build-system);
    # the project is built from the image's context, not here
    requirements = tomllib.loads(pyproject.decode())["project"]["dependencies"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(house), *requirements,
                    *BUILD_REQUIREMENTS], check=True)
    (house / ".complete").touch()
    return house


def build_project_image() -> str:
    """The Dockerfile's image, from the project's files as they are now, without network."""
    house = wheelhouse()
    with tempfile.TemporaryDirectory(prefix="lab-image-") as tmp:
        context = Path(tmp)
        for name in PROJECT_FILES:
            source, target = ROOT / name, context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy(source, target)
        for wheel in house.glob("*.whl"):
            shutil.copy(wheel, context / "wheels" / wheel.name)
        say(f"building {PROJECT_IMAGE} from the Dockerfile (wheels from the host's wheelhouse)...")
        podman("build", "--format", "docker", "--pull=never", "-t", PROJECT_IMAGE,
               "--build-arg", "PIP_OPTIONS=--no-index --find-links /tmp/wheels", str(context),
               stdout=subprocess.DEVNULL)
    podman("image", "prune", "-f", stdout=subprocess.DEVNULL)  # the image this one replaced, untagged now
    return PROJECT_IMAGE


def ensure_images() -> list[str]:
    """Everything docker-compose.yml runs, stand-ins included; answers the image names."""
    ensure_podman()
    began = time.monotonic()
    ensure_base()
    ensure_python_standin()
    ensure_hazelcast_standin()
    ensure_consul_standin()
    build_project_image()
    say(f"images ready in {time.monotonic() - began:.0f} s "
        f"(STAND-INS: {PYTHON_IMAGE}, {hazelcast_image()}, {consul_image()})")
    return [BASE_IMAGE, PYTHON_IMAGE, hazelcast_image(), consul_image(), PROJECT_IMAGE]


@contextlib.contextmanager
def docker_api(socket_path: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket while the block runs; answers its DOCKER_HOST."""
    url = f"unix://{socket_path}"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", url], env=podman_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman's API service did not come up on {url}")
            time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait(5)
        socket_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args != ["images"]:
        sys.stderr.write(__doc__)
        return 2
    for name in ensure_images():
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
