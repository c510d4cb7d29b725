"""Screenshots of the status page, as Debian's chromium renders it headless."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

WINDOW = "1280,1300"
RENDER_BUDGET_MS = 2500  # virtual time for the page's script: its first redraws from /status.json land


def chromium() -> str | None:
    """The browser, if this machine has it (`python -m labctl.deps chromium` installs it)."""
    return shutil.which("chromium")


def capture(url: str, path: Path, browser: str | None = None) -> Path:
    """Save a PNG of the page at `url` to `path`; raises CalledProcessError when the browser fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser or chromium() or "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={WINDOW}",
                        f"--virtual-time-budget={RENDER_BUDGET_MS}", f"--screenshot={path}", url],
                       capture_output=True, timeout=60, check=True)
    return path
