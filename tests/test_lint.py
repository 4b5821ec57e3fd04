"""`make lint` stays clean: ruff and mypy over the whole workspace, checked in CI too."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_lint_is_clean() -> None:
    done = subprocess.run(["make", "--no-print-directory", "lint"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
