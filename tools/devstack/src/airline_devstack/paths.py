"""Where the repository, its `.stack/` state and its `.cache/` live.

The devstack is installed editable from the workspace, but it is also run from pytest and from
`make`, whose working directories vary; anchoring on `infra/kafka/pom.xml` finds the same root
from all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKER = Path("infra/kafka/pom.xml")


def repo_root() -> Path:
    """The monorepo root: `$AIRLINE_REPO_ROOT`, else the nearest ancestor holding the Kafka pom."""
    override = os.environ.get("AIRLINE_REPO_ROOT")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / _MARKER).is_file():
                return candidate
    raise RuntimeError(
        f"cannot find the repository root (no {_MARKER} above {__file__} or the current "
        "directory); set AIRLINE_REPO_ROOT"
    )


def stack_dir() -> Path:
    """State of `airline-stack up` (data dirs, logs, state.json): `$AIRLINE_STACK_DIR`, else
    `.stack/` in the repo (git-ignored). The override lets a test run a second stack."""
    override = os.environ.get("AIRLINE_STACK_DIR")
    return Path(override).resolve() if override else repo_root() / ".stack"


def cache_dir() -> Path:
    """Downloads that survive `down` (the Kafka jars); git-ignored."""
    return repo_root() / ".cache"
