"""Security scans with zero unexplained findings: checkov over the chart rendered with every
ci/*-values.yaml and over every kustomization under k8s/ (accepted findings, each with its
reason, in tools/security/checkov-skips.yaml); a dependency audit of uv.lock with pip-audit
against what this machine can reach. (hadolint over the Dockerfile: test_k8s_images.py.)"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_support import CI_VALUES, KUSTOMIZATIONS, REPO_ROOT, Tools, template_args

pytestmark = pytest.mark.k8s
SKIPS = REPO_ROOT / "tools" / "security" / "checkov-skips.yaml"
CHECKOV = "checkov==3.3.30"
PIP_AUDIT = "pip-audit==2.10.1"


def _tool(package: str, command: str, *args: str, timeout: float = 600
          ) -> subprocess.CompletedProcess[str]:
    """Run a scanner from PyPI in a throwaway environment of its own (uv's tool cache), so its
    dependencies never meet the workspace's."""
    return subprocess.run(["uv", "tool", "run", "--from", package, command, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def manifests(k8s_tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Everything we deploy, rendered: one file per chart variant and per kustomization."""
    out = tmp_path_factory.mktemp("rendered")
    for values in CI_VALUES:
        (out / f"chart-{values.stem}.yaml").write_text(
            k8s_tools.helm(*template_args([values])).stdout)
    for directory in KUSTOMIZATIONS:
        name = "-".join(directory.relative_to(REPO_ROOT).parts)
        (out / f"{name}.yaml").write_text(k8s_tools.kubectl("kustomize", directory).stdout)
    return out


def findings(directory: Path) -> list[tuple[str, str, str]]:
    """(check id, resource, file) of every failed checkov check on the files in ``directory``."""
    result = _tool(CHECKOV, "checkov", "--directory", str(directory), "--framework",
                   "kubernetes", "--output", "json", "--quiet", "--compact",
                   "--skip-download")
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr[-2000:]}"
    reports: Any = json.loads(result.stdout)
    found = []
    for report in reports if isinstance(reports, list) else [reports]:
        for failed in report.get("results", {}).get("failed_checks", []):
            found.append((failed["check_id"], failed["resource"], failed["file_path"]))
    return found


def test_checkov_finds_nothing_that_is_not_explained(manifests: Path) -> None:
    skips: dict[str, dict[str, Any]] = yaml.safe_load(SKIPS.read_text())
    for check, skip in skips.items():
        assert skip.get("reason", "").strip(), f"{check}: an accepted finding needs a reason"
    found = findings(manifests)
    unexplained = [f for f in found if not any(
        fnmatch.fnmatch(f[1], pattern) for pattern in skips.get(f[0], {}).get("resources", []))]
    assert not unexplained, "checkov findings not in tools/security/checkov-skips.yaml:\n" + (
        "\n".join(f"{c} {r} ({p})" for c, r, p in unexplained))
    unused = sorted(set(skips) - {c for c, _, _ in found})
    assert not unused, f"accepted findings checkov no longer reports (remove them): {unused}"


def test_checkov_would_catch_a_privileged_container(tmp_path: Path) -> None:
    """The scan is live: a pod that runs privileged as root is reported."""
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "airline"},
        "spec": {"containers": [{"name": "c", "image": "x:1",
                                 "securityContext": {"privileged": True, "runAsUser": 0}}]}}))
    checks = {c for c, _, _ in findings(tmp_path)}
    assert {"CKV_K8S_16", "CKV_K8S_40"} <= checks, checks


def test_dependency_audit_of_the_lock(tmp_path: Path) -> None:
    """pip-audit over every package uv.lock pins. It needs a vulnerability service (PyPI's
    JSON API or OSV); where neither answers (this machine reaches only PyPI's package index),
    the test says so and skips rather than pass on nothing."""
    requirements = tmp_path / "requirements.txt"
    subprocess.run(["uv", "export", "--frozen", "--no-emit-workspace", "--no-hashes",
                    "--all-packages", "--quiet", "--output-file", str(requirements)],
                   cwd=REPO_ROOT, check=True, timeout=120)
    report = tmp_path / "audit.json"
    result = _tool(PIP_AUDIT, "pip-audit", "--requirement", str(requirements), "--no-deps",
                   "--disable-pip", "--progress-spinner", "off", "--format", "json",
                   "--output", str(report))
    assert report.is_file(), result.stderr[-2000:]
    dependencies = json.loads(report.read_text())["dependencies"]
    vulnerable = [f"{d['name']} {d['version']}: {[v['id'] for v in d['vulns']]}"
                  for d in dependencies if d.get("vulns")]
    assert not vulnerable, vulnerable
    audited = [d for d in dependencies if not d.get("skip_reason")]
    if not audited:
        pytest.skip(f"pip-audit could audit none of {len(dependencies)} packages: no "
                    "vulnerability service reachable from here (PyPI's JSON API answers 404, "
                    "api.osv.dev does not resolve)")
