"""The chart, the images, skaffold.yaml, k8s/ and the code agree: every env var a template sets
is read by its component and every required setting is set; each component's ``config`` schema
lists exactly the settings it reads that the chart does not set; probe, Service and
ServiceMonitor ports agree with the container; the chart's topics are the registry's; skaffold's
images are the chart's; the chart's database Secret, network peers and skaffold's Tableau
forward are the Postgres Cluster's; pinned third-party versions are the documented ones."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_support import (
    CHART,
    CI_VALUES,
    COMPONENTS,
    DOCKERFILE,
    REPO_ROOT,
    SERVICES,
    SKAFFOLD,
    VENV_BIN,
    Tools,
    chart_values,
    component_workload,
    load_documents,
    named,
    of_kind,
    pod_spec,
    pod_template_metadata,
    template_args,
)

pytestmark = pytest.mark.k8s

Objects = list[dict[str, Any]]


# --------------------------------------------------------------------------- settings
def settings_class(component: str) -> type:
    """``airline_<x>.settings.Settings`` of a chart component."""
    package = COMPONENTS[component][1]
    try:
        module = importlib.import_module(f"{package}.settings")
        return typing.cast(type, module.Settings)
    except (ImportError, AttributeError) as e:
        pytest.fail(
            f"{package}.settings.Settings is not importable ({e}): the chart cannot be "
            f"checked against the {COMPONENTS[component][0]} settings"
        )


def settings_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """{env name: field} of every setting of ``cls``, nested groups included."""
    fields: dict[str, dataclasses.Field[Any]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            fields |= settings_fields(tp)
        else:
            fields[f.metadata["env"]] = f
    return fields


def container_env_names(objects: Objects, component: str) -> list[str]:
    (container,) = pod_spec(component_workload(objects, component))["containers"]
    return [item["name"] for item in container.get("env", [])]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
@pytest.mark.parametrize("component", list(COMPONENTS))
def test_every_env_var_is_read_and_every_required_setting_set(
    render: Any, values: Path, component: str
) -> None:
    from airline_core.config import env_names

    cls = settings_class(component)
    reads = set(env_names(cls))
    names = container_env_names(render(values), component)
    assert len(names) == len(set(names)), f"duplicate env vars: {names}"
    unread = sorted(set(names) - reads)
    assert not unread, (
        f"{COMPONENTS[component][0]} does not read {unread} (it reads {sorted(reads)})"
    )
    required = {
        env
        for env, f in settings_fields(cls).items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert required <= set(names), f"required settings not set: {sorted(required - set(names))}"


#: Values that make the chart set every optional setting it owns (SASL, TLS files, Redis, ...).
EVERY_CHART_SETTING = (
    "--set",
    "kafka.saslMechanism=SCRAM-SHA-512",
    "--set",
    "kafka.saslUsername=u",
    "--set",
    "kafka.sslCaLocation=/ca",
    "--set",
    "kafka.sslCertificateLocation=/cert",
    "--set",
    "kafka.sslKeyLocation=/key",
    "--set",
    "kafka.topicPrefix=p.",
    "--set",
    "redis.url=redis://redis:6379/0",
    "--set",
    "etl.pushgatewayUrl=http://pg:9091",
)


@pytest.mark.parametrize("component", list(COMPONENTS))
def test_config_schema_lists_exactly_the_settings_the_chart_leaves_to_config(
    render: Any, component: str
) -> None:
    """``<component>.config`` accepts every setting the component's code declares, less the
    ones the chart sets from its own values (found by rendering with all of them on), and
    nothing else: the schema cannot drift from the code."""
    from airline_core.config import env_names

    objects = render(extra=EVERY_CHART_SETTING)
    own_config = set(chart_values()[component]["config"])
    chart_sets = set(container_env_names(objects, component)) - own_config
    expected = set(env_names(settings_class(component))) - chart_sets
    schema = json.loads((CHART / "values.schema.json").read_text())
    config = schema["properties"][component]["properties"]["config"]
    assert config["additionalProperties"] is False
    listed = set(config["properties"])
    assert listed == expected, (
        f"schema lists {sorted(listed - expected)} the component does not read (or the chart "
        f"sets), misses {sorted(expected - listed)}: run .venv/bin/python "
        "tools/k8s/sync-settings.py"
    )


def test_sync_settings_check_passes() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "tools/k8s/sync-settings.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        "values.schema.json is stale: run .venv/bin/python tools/k8s/sync-settings.py\n"
        + result.stderr
    )


def test_every_setting_in_config_renders(k8s_tools: Tools) -> None:
    """The schema's lists are accepted whole: each listed setting, set at once, renders."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    args: list[str] = []
    for component in COMPONENTS:
        config = schema["properties"][component]["properties"]["config"]["properties"]
        for env, prop in config.items():
            args += ["--set-string", f"{component}.config.{env}={prop.get('enum', ['1'])[0]}"]
    k8s_tools.helm(*template_args([], *args))


@pytest.mark.parametrize("component", SERVICES)
def test_metrics_port_matches_the_components_default(component: str) -> None:
    fields = settings_fields(settings_class(component))
    assert "METRICS_PORT" in fields, f"{component} has no METRICS_PORT setting"
    assert fields["METRICS_PORT"].default == chart_values()[component]["metricsPort"]


# --------------------------------------------------------------------------- ports
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_probe_service_and_service_monitor_ports_agree(render: Any, values: Path) -> None:
    objects = render(values)
    monitors = of_kind(objects, "ServiceMonitor")
    for component in SERVICES:
        workload = component_workload(objects, component)
        (container,) = pod_spec(workload)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert ports == {"metrics": int(env["METRICS_PORT"])}, component
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports, (component, probe)
        service = named(objects, "Service", workload["metadata"]["name"])
        (service_port,) = service["spec"]["ports"]
        assert (
            service_port["targetPort"] in ports or service_port["targetPort"] == ports["metrics"]
        ), component
        assert service_port["port"] == ports["metrics"]
        pod_labels = pod_template_metadata(workload)["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), component
        if component == "engine":
            assert workload["spec"]["serviceName"] == service["metadata"]["name"]
        for monitor in monitors:
            if monitor["metadata"]["name"] != service["metadata"]["name"]:
                continue
            selector = monitor["spec"]["selector"]["matchLabels"]
            assert selector.items() <= service["metadata"]["labels"].items()
            assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service_port["name"]]
            assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    if monitors:
        assert len(monitors) == len(SERVICES)


# --------------------------------------------------------------------------- topics
def test_chart_topics_are_the_registry() -> None:
    from airline_core import config
    from airline_core.topics_cli import TopicsSettings, export_values

    expected = export_values(config.from_values(TopicsSettings, environ={}))
    assert chart_values()["topics"] == expected, (
        "helm values topics differ from the registry: run .venv/bin/python tools/k8s/sync-topics.py"
    )


def test_sync_topics_check_passes() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "tools/k8s/sync-topics.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_rendered_kafka_topics_are_the_registrys(rendered_default: Objects, render: Any) -> None:
    from airline_core.topics import DEFAULT_PARTITIONS, REGISTRY

    topics = of_kind(rendered_default, "KafkaTopic")
    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(s.name for s in REGISTRY)
    for spec in REGISTRY:
        (topic,) = [t for t in topics if t["spec"]["topicName"] == spec.name]
        assert topic["spec"]["partitions"] == DEFAULT_PARTITIONS
        assert topic["spec"]["config"] == dict(spec.configs)
    prefixed = of_kind(render(extra=("--set", "kafka.topicPrefix=tenant1.")), "KafkaTopic")
    assert {t["spec"]["topicName"] for t in prefixed} == {f"tenant1.{s.name}" for s in REGISTRY}


# --------------------------------------------------------------------------- images
def skaffold_configs() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in load_documents(SKAFFOLD.read_text())}


def template_name(image: str) -> str:
    """Skaffold's template variable suffix: `-`, `/` and `.` become `_`."""
    return re.sub(r"[-/.]", "_", image)


def test_skaffold_images_match_chart_values_and_dockerfiles(rendered_default: Objects) -> None:
    airline = skaffold_configs()["airline"]
    artifacts = {a["image"]: a for a in airline["build"]["artifacts"]}
    assert set(artifacts) == {dist for dist, _, _ in COMPONENTS.values()}
    (release,) = airline["deploy"]["helm"]["releases"]
    assert (REPO_ROOT / release["chartPath"]).resolve() == CHART.resolve()
    templates = release["setValueTemplates"]
    values = chart_values()
    for component, (dist, _, source) in COMPONENTS.items():
        artifact = artifacts[dist]
        assert artifact["context"] == "."
        assert (REPO_ROOT / artifact["docker"]["dockerfile"]).resolve() == DOCKERFILE
        assert artifact["docker"]["buildArgs"] == {
            "COMPONENT": dist, "SOURCE": source.relative_to(REPO_ROOT).as_posix()}
        name = template_name(dist)
        assert templates[f"{component}.image.repository"] == f"{{{{.IMAGE_REPO_{name}}}}}"
        assert templates[f"{component}.image.tag"] == f"{{{{.IMAGE_TAG_{name}}}}}"
        assert values[component]["image"]["repository"] == dist
        (container,) = pod_spec(component_workload(rendered_default, component))["containers"]
        assert container["image"].startswith(f"{dist}:")
    assert len(templates) == 2 * len(COMPONENTS), sorted(templates)


def test_container_command_is_the_images_entrypoint(rendered_default: Objects) -> None:
    """The image's entrypoint is a link to the COMPONENT's console script; the chart names the
    script itself (on the image's PATH), so both run the same program."""
    text = DOCKERFILE.read_text()
    entrypoints = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.M)
    assert entrypoints and json.loads(entrypoints[-1]) == ["/app/.venv/bin/entrypoint"]
    assert 'ln -s "${COMPONENT}" /app/.venv/bin/entrypoint' in text
    assert "PATH=/app/.venv/bin:$PATH" in text
    for component, (dist, _, _) in COMPONENTS.items():
        (container,) = pod_spec(component_workload(rendered_default, component))["containers"]
        assert container["command"] == [dist]


def infra_postgres_cluster() -> dict[str, Any]:
    """The CloudNativePG Cluster of k8s/base/postgres.yaml."""
    docs = load_documents((REPO_ROOT / "k8s" / "base" / "postgres.yaml").read_text())
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    return cluster


def test_skaffold_deploys_operators_then_infra_then_chart() -> None:
    configs = skaffold_configs()
    assert list(configs) == ["operators", "infra", "airline"]
    operators = {r["name"] for r in configs["operators"]["deploy"]["helm"]["releases"]}
    assert operators == {"strimzi-cluster-operator", "cnpg"}
    assert configs["infra"]["requires"] == [{"configs": ["operators"]}]
    assert configs["airline"]["requires"] == [{"configs": ["infra"]}]
    assert configs["infra"]["manifests"]["kustomize"]["paths"] == ["k8s"]
    tableau = f"{infra_postgres_cluster()['metadata']['name']}-ro"
    forwards = {
        (f["resourceName"], f["port"], f.get("localPort")) for f in configs["infra"]["portForward"]
    }
    assert (tableau, 5432, 5432) in forwards
    monitoring = next(p for p in configs["infra"]["profiles"] if p["name"] == "monitoring")
    names = {f["resourceName"] for f in monitoring["portForward"]}
    assert {tableau, "kube-prometheus-stack-grafana", "kube-prometheus-stack-prometheus"} <= names
    profiles = {p["name"] for p in configs["airline"]["profiles"]}
    assert {"kind", "minikube", "monitoring"} <= profiles


def test_pinned_third_party_versions_are_the_documented_ones() -> None:
    releases = {}
    for config in skaffold_configs().values():
        for scope in [config, *config.get("profiles", [])]:
            for release in scope.get("deploy", {}).get("helm", {}).get("releases", []):
                if "remoteChart" in release:
                    releases[release["name"]] = release["version"]
    assert set(releases) == {"strimzi-cluster-operator", "cnpg", "kube-prometheus-stack"}
    docs = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    for name, version in releases.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
        assert f"--version {version}" in docs, f"docs/kubernetes.md must install {name} {version}"
    kustomization = (REPO_ROOT / "k8s" / "base" / "kustomization.yaml").read_text()
    for name in ("strimzi-cluster-operator", "cnpg"):
        assert "--version " + releases[name] in kustomization, name
    assert re.search(r":\d+\.\d+", infra_postgres_cluster()["spec"]["imageName"])
    infra_images = re.findall(
        r"image:\s*(\S+)", "".join(p.read_text() for p in (REPO_ROOT / "k8s").rglob("*.yaml"))
    )
    assert infra_images and all(re.search(r":\d+\.\d+(\.\d+)?", i) for i in infra_images), (
        infra_images
    )


def test_chart_reads_the_postgres_clusters_secret_and_reaches_its_pods() -> None:
    """The chart's dev defaults are the Cluster in k8s/: DATABASE_URL from the Secret the
    operator generates for its application owner (<cluster>-app, key uri), network policy peers
    on the operator's pod label, and the database the ETL owns."""
    cluster = infra_postgres_cluster()
    name = cluster["metadata"]["name"]
    values = chart_values()
    assert values["database"] == {"existingSecret": f"{name}-app", "uriKey": "uri"}
    assert values["networkPolicy"]["postgresPeers"] == [
        {"podSelector": {"matchLabels": {"cnpg.io/cluster": name}}}
    ]
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "airline_dw"
    (comment,) = re.findall(r"((?:^#.*\n)+)^database:", (CHART / "values.yaml").read_text(), re.M)
    for key in ("username", "password", "host", "port", "dbname", "uri"):
        assert re.search(rf"\b{key}\b", comment), (
            f"values.yaml must document the key {key} of the Secret {name}-app"
        )


def test_production_values_replicate_topics(rendered_ci: dict[str, Objects]) -> None:
    production = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
    assert production["topics"]["replicas"] == 3
    assert production["kafka"]["topicConfig"]["min.insync.replicas"] == "2"
    assert chart_values()["topics"]["replicas"] == 1
