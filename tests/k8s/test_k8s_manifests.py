"""helm lint, helm template of every ci/*-values.yaml, and schema validation of every rendered
object and every object in k8s/: core kinds against Kubernetes 1.35 (strict), custom resources
against the CRDs in ../shared/k8s-schemas; the validated count must equal the rendered count.
What skaffold deploys holds no Namespace; the warehouse is a CloudNativePG Cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from k8s_support import (
    CHART,
    CI_VALUES,
    KUBERNETES_VERSION,
    NAMESPACE,
    REPO_ROOT,
    SKAFFOLD,
    Tools,
    Validator,
    load_documents,
    of_kind,
)

pytestmark = pytest.mark.k8s


def test_tools_are_the_pinned_helm_v4_and_kubectl_1_35(k8s_tools: Tools) -> None:
    assert k8s_tools.helm("version", "--template", "{{.Version}}").stdout.startswith("v4.")
    assert "Client Version: v1.35." in k8s_tools.kubectl("version", "--client").stdout


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint_strict(k8s_tools: Tools, values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["--values", str(values)] if values else [])
    result = k8s_tools.helm(*args)
    assert "0 chart(s) failed" in result.stdout


def test_ci_variants_cover_default_production_and_monitoring() -> None:
    assert {p.name for p in CI_VALUES} >= {
        "default-values.yaml",
        "production-values.yaml",
        "monitoring-values.yaml",
    }


def test_every_rendered_object_validates(
    rendered_ci: dict[str, list[dict[str, Any]]], validator: Validator
) -> None:
    for name, objects in rendered_ci.items():
        assert objects, f"{name}: nothing rendered"
        validated, failures = validator.validate_all(objects)
        assert not failures, f"{name}:\n" + "\n".join(failures)
        assert validated == len(objects), name


def test_the_helm_test_pod_validates(k8s_tools: Tools, validator: Validator) -> None:
    # helm template includes hooks; check the test pod is there and valid on its own too.
    out = k8s_tools.helm(
        "template",
        "airline",
        str(CHART),
        "--kube-version",
        KUBERNETES_VERSION,
        "--show-only",
        "templates/tests/test-readyz.yaml",
    ).stdout
    (pod,) = load_documents(out)
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert validator.validate(pod) == "core"


def test_every_infra_object_validates(
    infra_objects: dict[str, list[dict[str, Any]]], validator: Validator
) -> None:
    assert "k8s" in infra_objects
    for directory, objects in infra_objects.items():
        assert objects, f"{directory}: kustomize built nothing"
        validated, failures = validator.validate_all(objects)
        assert not failures, f"{directory}:\n" + "\n".join(failures)
        assert validated == len(objects), directory


def test_every_yaml_file_in_k8s_is_part_of_a_kustomization(
    infra_objects: dict[str, list[dict[str, Any]]],
) -> None:
    """A manifest left out of every kustomization would escape validation (and deployment)."""
    from k8s_support import K8S_DIR

    listed: set[Path] = set()
    for kustomization in K8S_DIR.rglob("kustomization.yaml"):
        doc = yaml.safe_load(kustomization.read_text())
        listed |= {(kustomization.parent / r).resolve() for r in doc.get("resources", [])}
    manifests = {p.resolve() for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert manifests <= listed, sorted(str(p) for p in manifests - listed)


def test_validator_rejects_unknown_kinds_and_bad_fields(validator: Validator) -> None:
    validated, failures = validator.validate_all(
        [
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "datta": {}},
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaTopic",
                "metadata": {"name": "t"},
                "spec": {"partitions": "three"},
            },
        ]
    )
    assert validated == 0 and len(failures) == 3, failures


def test_skaffold_yaml_matches_its_schema(schemas_dir: Path) -> None:
    schema = json.loads((schemas_dir / "skaffold" / "v4beta14.json").read_text())
    docs = load_documents(SKAFFOLD.read_text())
    assert docs, "skaffold.yaml is empty"
    for doc in docs:
        assert doc["apiVersion"] == "skaffold/v4beta14"
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
        ]
        assert not errors, f"skaffold config {doc['metadata']['name']}:\n" + "\n".join(errors)


# --------------------------------------------------------------------------- what skaffold deploys
def skaffold_scopes() -> list[tuple[str, dict[str, Any]]]:
    """(label, config or profile) of every skaffold config and each of its profiles."""
    scopes = []
    for doc in load_documents(SKAFFOLD.read_text()):
        scopes.append((doc["metadata"]["name"], doc))
        scopes += [(f"{doc['metadata']['name']}/{p['name']}", p) for p in doc.get("profiles", [])]
    return scopes


def test_skaffold_deploys_no_namespace(k8s_tools: Tools, rendered_ci: dict[str, Any]) -> None:
    """Cleanup deletes what skaffold deployed: a Namespace among it would take the warehouse,
    the lake volume and the operators with it. The namespace comes from helm's
    --create-namespace (on no release's books) before anything is applied into it."""
    built = 0
    for label, scope in skaffold_scopes():
        manifests = scope.get("manifests", {})
        for path in manifests.get("kustomize", {}).get("paths", []):
            objects = load_documents(k8s_tools.kubectl("kustomize", REPO_ROOT / path).stdout)
            assert not of_kind(objects, "Namespace"), f"{label}: kustomize {path}"
            built += 1
        for pattern in manifests.get("rawYaml", []):
            for file in REPO_ROOT.glob(pattern):
                assert not of_kind(load_documents(file.read_text()), "Namespace"), file
    assert built, "skaffold builds no kustomization: nothing was checked"
    for name, objects in rendered_ci.items():
        assert not of_kind(objects, "Namespace"), f"the chart ({name})"
    (first_label, first), *_ = skaffold_scopes()
    creating = [
        r
        for r in first["deploy"]["helm"]["releases"]
        if r["namespace"] == NAMESPACE and r.get("createNamespace")
    ]
    assert creating, f"{first_label}: no release creates namespace {NAMESPACE} first"


# --------------------------------------------------------------------------- the warehouse
def test_postgres_is_a_cloudnative_pg_cluster_with_roles_and_backups(
    schemas_dir: Path, infra_objects: dict[str, list[dict[str, Any]]]
) -> None:
    """Against the CloudNativePG CRDs alone (so the check is theirs, not a generic one): the
    Cluster, the ETL writer as owner of airline_dw with the generated Secret, the read-only
    BI role with a basic-auth password Secret, a replica behind -ro, a ScheduledBackup."""
    cnpg = schemas_dir / "cloudnative-pg"
    if not cnpg.is_dir():
        pytest.skip(f"CloudNativePG CRDs not found at {cnpg}")
    validator = Validator.from_dir(cnpg)
    objects = infra_objects["k8s"]
    assert not [
        o
        for o in objects
        if o["kind"] in ("StatefulSet", "Service") and o["metadata"]["name"] == "postgres"
    ], "the hand-made Postgres is back"
    (cluster,) = of_kind(objects, "Cluster")
    (backup,) = of_kind(objects, "ScheduledBackup")
    for obj in (cluster, backup):
        assert validator.validate(obj) == "crd", obj["kind"]
    spec = cluster["spec"]
    assert spec["instances"] >= 2, "postgres-ro selects replicas: one instance has none"
    assert spec["bootstrap"]["initdb"] == {"database": "airline_dw", "owner": "airline"}
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == {"airline", "airline_bi"}
    assert "passwordSecret" not in roles["airline"], "the operator owns the writer's password"
    reader = roles["airline_bi"]
    assert reader["login"] is True
    assert not any(
        reader.get(a)
        for a in ("superuser", "createdb", "createrole", "bypassrls", "replication", "inRoles")
    )
    secrets = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
    password = secrets[reader["passwordSecret"]["name"]]
    assert password["type"] == "kubernetes.io/basic-auth"
    assert password["stringData"]["username"] == "airline_bi"
    assert f"{cluster['metadata']['name']}-app" not in secrets, "the operator generates it"
    assert backup["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert backup["spec"]["method"] == "volumeSnapshot" and "volumeSnapshot" in spec["backup"]
    assert len(backup["spec"]["schedule"].split()) == 6, "CloudNativePG's cron has seconds"
