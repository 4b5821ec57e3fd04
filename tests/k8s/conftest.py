"""Session fixtures of the Kubernetes checks (see k8s_support for the helpers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from k8s_support import (
    CI_VALUES,
    KUSTOMIZATIONS,
    REPO_ROOT,
    Tools,
    Validator,
    install_tools,
    load_documents,
    shared_schemas_dir,
    template_args,
)

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def k8s_tools() -> Tools:
    """helm v4 and kubectl v1.35, installed by tools/k8s/install-tools.sh when missing."""
    return install_tools()


@pytest.fixture(scope="session")
def render(k8s_tools: Tools) -> Render:
    """Render the chart: ``render(values_file, ..., extra=("--set", "a=b"))``."""

    def _render(*values_files: Path, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return load_documents(k8s_tools.helm(*template_args(list(values_files), *extra)).stdout)

    return _render


@pytest.fixture(scope="session")
def rendered_ci(render: Render) -> dict[str, list[dict[str, Any]]]:
    """Every ci/*-values.yaml variant rendered: {file name: objects}."""
    assert CI_VALUES, "no helm/airline-streaming/ci/*-values.yaml"
    return {path.name: render(path) for path in CI_VALUES}


@pytest.fixture(scope="session")
def rendered_default(render: Render) -> list[dict[str, Any]]:
    """The chart rendered with its default values (dev)."""
    return render()


@pytest.fixture(scope="session")
def infra_objects(k8s_tools: Tools) -> dict[str, list[dict[str, Any]]]:
    """Every kustomization under k8s/, built by ``kubectl kustomize``: {dir: objects}."""
    return {
        str(path.relative_to(REPO_ROOT)): load_documents(
            k8s_tools.kubectl("kustomize", path).stdout
        )
        for path in KUSTOMIZATIONS
    }


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """../shared/k8s-schemas, or skip saying where it was expected."""
    path = shared_schemas_dir()
    if not (path / "SOURCES.md").is_file():
        pytest.skip(
            f"schemas not found at {path}: expected ../shared/k8s-schemas beside the "
            "repository (CRDs and the skaffold schema; see its SOURCES.md)"
        )
    return path


@pytest.fixture(scope="session")
def validator(schemas_dir: Path) -> Validator:
    """Validator knowing the Strimzi, Prometheus Operator and CloudNativePG CRDs."""
    return Validator.from_dir(schemas_dir)
