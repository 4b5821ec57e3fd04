"""Where the repository, its `.stack/` state and its `.cache/` live.

The devstack is installed editable from the workspace, but it is also run from pytest and from
`make`, whose working directories vary; anchoring on `infra/kafka/pom.xml` finds the same root
from all of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from airline_core import config
from airline_core.config import setting

_MARKER = Path("infra/kafka/pom.xml")


@dataclasses.dataclass(frozen=True)
class StackPaths:
    """Where `airline-stack` and `airline-demo` keep their state (read at each use, so a test
    can point a second stack elsewhere)."""

    repo_root: str = setting(
        "AIRLINE_REPO_ROOT",
        "",
        f"the repository (empty: the nearest ancestor holding {_MARKER})",
        flag=None,
    )
    stack_dir: str = setting(
        "AIRLINE_STACK_DIR",
        "",
        "state of the local stack that airline-stack and airline-demo start: data dirs, pid "
        "files, logs, state.json (empty: .stack/ in the repository)",
        flag=None,
    )
    postgres_dir: str = setting(
        "AIRLINE_STACK_POSTGRES_DIR",
        "",
        "data dir and unix socket of the stack's private Postgres cluster, its log beside it "
        "as DIR.log (empty: postgres/ in the stack dir; as root, where the server runs as the "
        "postgres OS user, which may not be able to enter the clone, "
        "/var/tmp/airline-stack-HASH/postgres, HASH being the first 12 hex digits of the "
        "sha256 of the stack dir's path)",
        flag=None,
    )


def settings() -> StackPaths:
    """The location settings from the environment."""
    return config.from_values(StackPaths)


def repo_root() -> Path:
    """The monorepo root: `$AIRLINE_REPO_ROOT`, else the nearest ancestor holding the Kafka pom."""
    override = settings().repo_root
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
    override = settings().stack_dir
    return Path(override).resolve() if override else repo_root() / ".stack"


def cache_dir() -> Path:
    """Downloads that survive `down` (the Kafka jars); git-ignored."""
    return repo_root() / ".cache"
