"""Podman, as this project drives it: rootful, host networking, no systemd.

Every call runs with ``CONTAINERS_CONF`` pointing at a file of ours rather than editing the
machine's /etc/containers: the settings below are the ones a container host without systemd and
without CAP_SYS_RESOURCE (CI's, this one's) needs, and they do not change how the images or the
pods behave.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from airline_devstack.paths import cache_dir

# runc: crun refuses the hybrid cgroup layout; cgroupfs and a file events log: no systemd;
# ulimits capped at what a process without CAP_SYS_RESOURCE may set.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its command line and stderr."""


def podman_bin() -> str:
    """The podman executable, or a clear error saying how to get it."""
    found = shutil.which("podman")
    if not found:
        raise PodmanError("podman is not installed (Debian: apt-get install podman runc "
                          "mmdebstrap, or `make system-deps`)")
    return found


def containers_conf() -> Path:
    """Our containers.conf, written once under .cache/podman/."""
    path = cache_dir() / "podman" / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTAINERS_CONF)
    return path


def podman(*args: str, check: bool = True, stdin: bytes | None = None,
           capture: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` with our containers.conf; raise PodmanError on failure if ``check``."""
    argv = [podman_bin(), *args]
    env = {**os.environ, "CONTAINERS_CONF": str(containers_conf())}
    result = subprocess.run(argv, input=stdin.decode() if stdin is not None else None,
                            capture_output=capture, text=True, env=env, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip()[-2000:]
        raise PodmanError(f"`podman {' '.join(args[:3])} …` exited {result.returncode}: {detail}")
    return result


def podman_env() -> dict[str, str]:
    """The environment for a podman process started by the caller (long builds with progress)."""
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf())}


def image_exists(ref: str) -> bool:
    """Whether the local store holds ``ref``."""
    return podman("image", "exists", ref, check=False).returncode == 0

