"""Headless Chromium, the one renderer the reports need beyond Python: it turns a chart's SVG
into a PNG exactly as a browser shows it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from airline_core.errors import ConfigError

#: Flags for a headless run as any user (root included: no sandbox) with no GPU, profile
#: prompts or scrollbars.
HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions")


def find(name: str, setting: str = "REPORT_BROWSER") -> str:
    """The browser's path: ``name`` as a path or a command on PATH; a :class:`ConfigError`
    naming ``setting`` when there is none."""
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{setting}={name!r}: no such browser (install Chromium, e.g. apt "
                          "install chromium, or set REPORT_PNG=false to skip the PNGs)")
    return found


def screenshot(browser: str, page: Path, png: Path, width: int, height: int,
               timeout: float = 60.0) -> None:
    """Render ``page`` (a local file) at ``width`` x ``height`` into ``png``."""
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="airline-browser-") as profile:
        result = subprocess.run(
            [browser, *HEADLESS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={png.resolve()}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 or not png.is_file():
        raise RuntimeError(f"{browser} could not render {page.name} (exit {result.returncode}): "
                           f"{result.stderr.strip()[-500:]}")
