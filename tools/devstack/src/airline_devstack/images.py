"""The four images, built with podman from the project's one Dockerfile, without a registry.

A machine that reaches PyPI but no container registry (CI's, this one's) builds them in three
steps, each cached:

1. **A base image** equivalent to the official ``python:3.11-slim-bookworm``: Debian bookworm
   with python3.11 and its venv module, made by ``mmdebstrap`` from Debian's mirror and
   ``podman import``-ed (about 30 s). Tagged by what it contains, reused while it exists.
2. **A wheelhouse** on the host: every package the lock pins for the four components, for the
   base image's interpreter (its PEP 508 marker environment read from the image itself), plus
   the build backend and uv. Keyed by the lock's hash.
3. **The images**: ``podman build`` of the Dockerfile with ``BASE_IMAGE`` set to the local base,
   the wheelhouse as the ``wheelhouse`` build context, ``OFFLINE=1`` and no network at all, so
   the build is hermetic and the Dockerfile is the one users build from PyPI.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from airline_core.logging import get_logger
from packaging.markers import Marker
from packaging.requirements import Requirement

from airline_devstack.paths import cache_dir, repo_root
from airline_devstack.podman import PodmanError, image_exists, podman, podman_bin, podman_env

log = get_logger(__name__)

BASE_IMAGE = "localhost/airline-base:bookworm-python3.11"
BASE_PACKAGES = ("python3.11", "python3.11-venv")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
IMAGE_TAG = "e2e"
# Built in the image from source, so offline builds need the backend (and uv) in the wheelhouse.
BUILD_TOOLS = ("hatchling>=1.25", "uv==0.13.9")
# Tags of the wheels the base image's CPython 3.11 on glibc 2.36 x86_64 accepts.
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                   "linux_x86_64", "any")

_MARKER_ENV_SCRIPT = """
import json, os, platform, sys
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


@dataclass(frozen=True)
class Component:
    """One image: its chart key, workspace package (= console script) and source directory."""

    key: str
    package: str
    source: str

    @property
    def image(self) -> str:
        return f"localhost/{self.package}"


COMPONENTS = (
    Component("producer", "airline-producer", "services/producer"),
    Component("engine", "airline-engine", "services/engine"),
    Component("lakeWriter", "airline-lake-writer", "services/lake-writer"),
    Component("etl", "airline-etl", "jobs/etl"),
)


def build_base_image(ref: str = BASE_IMAGE) -> str:
    """The local Debian base image (built only if missing)."""
    if image_exists(ref):
        return ref
    log.info("building the base image with mmdebstrap (about 30 s)", image=ref)
    started = time.monotonic()
    debootstrap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         "bookworm", "-", DEBIAN_MIRROR], stdout=subprocess.PIPE)
    assert debootstrap.stdout is not None
    imported = subprocess.run(
        [podman_bin(), "import", "--quiet", "--change", "CMD [\"python3.11\"]", "-", ref],
        stdin=debootstrap.stdout, env=podman_env(), capture_output=True, text=True, check=False)
    debootstrap.stdout.close()
    if debootstrap.wait() != 0 or imported.returncode != 0:
        raise PodmanError(f"building {ref} failed: mmdebstrap exit {debootstrap.returncode}, "
                          f"podman import: {imported.stderr.strip()[-1000:]}")
    log.info("base image built", image=ref, seconds=round(time.monotonic() - started, 1))
    return ref


def marker_environment(image: str) -> dict[str, str]:
    """The PEP 508 marker environment of the image's python3.11, read by running it."""
    out = podman("run", "--rm", "--network", "none", image, "python3.11", "-c",
                 _MARKER_ENV_SCRIPT).stdout
    return dict(json.loads(out))


def locked_requirements(package: str) -> list[str]:
    """``name==version`` lines with ``--hash`` options the lock pins for ``package`` (no dev)."""
    out = subprocess.run(
        ["uv", "export", "--frozen", "--no-dev", "--no-emit-workspace", "--no-header",
         "--no-annotate", "--package", package], cwd=repo_root(), capture_output=True,
        text=True, check=True).stdout
    return [line.strip() for line in out.replace("\\\n", " ").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def for_environment(lines: list[str], environment: dict[str, str]) -> list[str]:
    """The requirement lines whose marker holds in ``environment``, the marker removed."""
    kept = []
    for line in lines:
        spec, _, hashes = line.partition(" --hash")
        requirement = Requirement(spec.strip())
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            requirement.marker = None
            kept.append(f"{requirement} --hash{hashes}" if hashes else str(requirement))
    return kept


def _pip_download(args: list[str], dest: Path) -> None:
    tags = [f"--platform={tag}" for tag in WHEEL_PLATFORMS]
    # pip's download (uv has none), run by uv in a throwaway environment of its own.
    subprocess.run(["uv", "tool", "run", "--quiet", "--from", "pip", "pip", "download", "--quiet",
                    "--disable-pip-version-check", "--only-binary=:all:", "--python-version=3.11",
                    "--implementation=cp", "--abi=cp311", "--abi=abi3", "--abi=none", *tags,
                    "--dest", str(dest), *args], check=True)


def build_wheelhouse(base_image: str) -> Path:
    """The wheels for the four images, under .cache/wheelhouse/<lock and interpreter hash>/."""
    environment = marker_environment(base_image)
    lock = (repo_root() / "uv.lock").read_bytes()
    key = hashlib.sha256(lock + json.dumps(environment, sort_keys=True).encode()).hexdigest()
    wheelhouse = cache_dir() / "wheelhouse" / key[:16]
    if (wheelhouse / "complete").is_file():
        return wheelhouse
    log.info("building the wheelhouse from uv.lock", dir=str(wheelhouse))
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for component in COMPONENTS:
            requirements = Path(tmp) / f"{component.package}.txt"
            requirements.write_text("\n".join(
                for_environment(locked_requirements(component.package), environment)) + "\n")
            _pip_download(["--require-hashes", "--no-deps", "-r", str(requirements)], wheelhouse)
    _pip_download(list(BUILD_TOOLS), wheelhouse)
    (wheelhouse / "complete").write_text(f"{environment['python_full_version']}\n")
    return wheelhouse


def build_image(component: Component, base_image: str, wheelhouse: Path,
                tag: str = IMAGE_TAG) -> str:
    """``podman build`` of the project's Dockerfile for ``component``, offline; its reference."""
    ref = f"{component.image}:{tag}"
    started = time.monotonic()
    log.info("building image", image=ref)
    result = subprocess.run(
        [podman_bin(), "build", "--quiet", "--network=none", "--file", "Dockerfile",
         "--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", f"COMPONENT={component.package}",
         "--build-arg", f"SOURCE={component.source}", "--build-arg", "OFFLINE=1",
         "--build-context", f"wheelhouse={wheelhouse}", "--tag", ref, "."],
        cwd=repo_root(), env=podman_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PodmanError(f"building {ref} failed:\n{result.stdout[-3000:]}"
                          f"{result.stderr[-3000:]}")
    log.info("image built", image=ref, seconds=round(time.monotonic() - started, 1))
    return ref


def build_all(tag: str = IMAGE_TAG) -> dict[str, str]:
    """Base image, wheelhouse and the four images; {chart key: image reference}."""
    base = build_base_image()
    wheelhouse = build_wheelhouse(base)
    return {c.key: build_image(c, base, wheelhouse, tag) for c in COMPONENTS}
