"""What the chart promises, read from its rendered objects: restricted pods, real probes,
resources, rollouts on config change (each component's own), workload kinds and strategies,
service accounts, the engine's disruption budget, images, secrets only by reference, the shared
lake volume, topics in the Kafka cluster's namespace, gated ServiceMonitors and NetworkPolicies,
the values schema, the helm test, NOTES."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from k8s_support import (
    CHART,
    CI_VALUES,
    COMPONENTS,
    KUBERNETES_VERSION,
    NAMESPACE,
    SERVICES,
    Tools,
    component_workload,
    named,
    of_kind,
    pod_spec,
    pod_template_metadata,
    template_args,
    workloads,
)

pytestmark = pytest.mark.k8s

Objects = list[dict[str, Any]]
SECRET_ENV = {"DATABASE_URL", "KAFKA_SASL_PASSWORD"}
DIGEST = "sha256:" + "ab" * 32


def all_pod_specs(objects: Objects) -> list[tuple[str, dict[str, Any]]]:
    specs = [(w["metadata"]["name"], pod_spec(w)) for w in workloads(objects)]
    return specs + [(p["metadata"]["name"], p["spec"]) for p in of_kind(objects, "Pod")]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_is_restricted(render: Any, values: Any) -> None:
    objects = render(values)
    specs = all_pod_specs(objects)
    assert len(specs) >= 4
    for name, spec in specs:
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] == 10001, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc.get("privileged"), name
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            assert set(container["resources"]["limits"]) >= {"cpu", "memory"}, name


def test_read_only_root_gets_an_empty_dir_for_tmp(rendered_default: Objects) -> None:
    for workload in workloads(rendered_default):
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec["volumes"]}
        (container,) = spec["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], workload["metadata"]["name"]


def test_services_probe_real_state_on_the_metrics_port(rendered_default: Objects) -> None:
    for component in SERVICES:
        (container,) = pod_spec(component_workload(rendered_default, component))["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def checksums(objects: Objects, key: str) -> dict[str, str | None]:
    """{workload name: its pod template's ``key`` annotation}."""
    return {
        w["metadata"]["name"]: pod_template_metadata(w).get("annotations", {}).get(key)
        for w in workloads(objects)
    }


def rolled(before: Objects, after: Objects, key: str = "checksum/config") -> set[str]:
    """The workloads whose pods a change from ``before`` to ``after`` restarts."""
    old, new = checksums(before, key), checksums(after, key)
    assert set(old) == set(new)
    return {name for name in old if old[name] != new[name]}


def test_a_shared_setting_rolls_every_pod(render: Any, rendered_default: Objects) -> None:
    assert all(checksums(rendered_default, "checksum/config").values())
    changed = render(extra=("--set", "log.level=DEBUG"))
    assert rolled(rendered_default, changed) == {
        w["metadata"]["name"] for w in workloads(rendered_default)
    }


@pytest.mark.parametrize(
    ("component", "setting"),
    [
        ("producer", "PRODUCER_SPEED=60"),
        ("engine", "ENGINE_COMMIT_INTERVAL_MS=500"),
        ("lakeWriter", "LAKE_IDLE_FLUSH_SECONDS=5"),
        ("etl", "ETL_MAX_REJECT_SHARE=0.1"),
    ],
)
def test_a_components_own_setting_rolls_only_its_pods(
    render: Any, rendered_default: Objects, component: str, setting: str
) -> None:
    changed = render(extra=("--set", f"{component}.config.{setting}"))
    assert rolled(rendered_default, changed) == {COMPONENTS[component][0]}
    (config_map,) = [
        c
        for c in of_kind(changed, "ConfigMap")
        if c["metadata"]["name"] == f"{COMPONENTS[component][0]}-config"
    ]
    key, value = setting.split("=")
    assert config_map["data"][key] == value
    assert not [
        c for c in of_kind(changed, "ConfigMap") if key in c.get("data", {}) and c is not config_map
    ]


def test_a_secret_change_rolls_only_the_pods_that_read_it(render: Any) -> None:
    """With the chart's own Secret: the database URL rolls the ETL, the SASL password the
    three services."""
    base = (
        "--set",
        "database.existingSecret=",
        "--set",
        "kafka.saslMechanism=SCRAM-SHA-512",
        "--set-string",
        "secrets.databaseUrl=postgresql://u:p@db/x",
        "--set-string",
        "secrets.kafkaSaslPassword=one",
    )
    before = render(extra=base)
    assert all(checksums(before, "checksum/secret").values())
    url = render(extra=(*base, "--set-string", "secrets.databaseUrl=postgresql://u:q@db/x"))
    assert rolled(before, url, "checksum/secret") == {"airline-etl"}
    assert rolled(before, url) == set()
    password = render(extra=(*base, "--set-string", "secrets.kafkaSaslPassword=two"))
    assert rolled(before, password, "checksum/secret") == {COMPONENTS[c][0] for c in SERVICES}


def test_workload_kinds_and_update_strategies(rendered_default: Objects) -> None:
    producer = component_workload(rendered_default, "producer")
    assert producer["kind"] == "Deployment"
    assert producer["spec"]["strategy"] == {"type": "Recreate"}
    lake_writer = component_workload(rendered_default, "lakeWriter")
    assert lake_writer["kind"] == "Deployment"
    assert lake_writer["spec"]["strategy"] == {"type": "Recreate"}
    engine = component_workload(rendered_default, "engine")
    assert engine["kind"] == "StatefulSet"
    assert engine["spec"]["podManagementPolicy"] == "Parallel"
    assert engine["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert engine["spec"]["serviceName"] == "airline-engine"
    (container,) = pod_spec(engine)["containers"]
    instance = [e for e in container["env"] if e["name"] == "KAFKA_GROUP_INSTANCE_ID"]
    assert instance == [
        {
            "name": "KAFKA_GROUP_INSTANCE_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        }
    ]


def test_etl_is_a_cron_job_that_never_overlaps(rendered_default: Objects) -> None:
    cron = component_workload(rendered_default, "etl")
    assert cron["kind"] == "CronJob"
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedule"] and spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] >= 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_secrets_only_through_secret_key_refs(render: Any, values: Any) -> None:
    objects = render(values)
    for config_map in of_kind(objects, "ConfigMap"):
        assert not SECRET_ENV & set(config_map.get("data", {})), config_map["metadata"]["name"]
        for value in config_map.get("data", {}).values():
            assert not re.search(r"://[^/\s]*:[^@/\s]+@", value), "credentials in a ConfigMap"
    for _, spec in all_pod_specs(objects):
        for container in spec["containers"]:
            for item in container.get("env", []):
                if item["name"] in SECRET_ENV:
                    assert set(item) == {"name", "valueFrom"}, item
                    assert "secretKeyRef" in item["valueFrom"], item
            assert not any("secretRef" in ref for ref in container.get("envFrom", []))
    database = [
        item
        for w in workloads(objects)
        for c in pod_spec(w)["containers"]
        for item in c.get("env", [])
        if item["name"] == "DATABASE_URL"
    ]
    assert len(database) == 1, "exactly one workload (the ETL) gets DATABASE_URL"


def secret_refs(objects: Objects) -> dict[tuple[str, str], tuple[str, str]]:
    """{(workload, env name): (Secret name, key)} of every secretKeyRef."""
    return {
        (w["metadata"]["name"], item["name"]): (
            item["valueFrom"]["secretKeyRef"]["name"],
            item["valueFrom"]["secretKeyRef"]["key"],
        )
        for w in workloads(objects)
        for c in pod_spec(w)["containers"]
        for item in c.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }


def test_database_url_comes_from_the_postgres_operators_secret(rendered_default: Objects) -> None:
    """Dev: the Secret CloudNativePG generates for the warehouse owner, key uri; the chart
    then has no Secret of its own to render."""
    assert secret_refs(rendered_default) == {
        ("airline-etl", "DATABASE_URL"): ("postgres-app", "uri")
    }
    assert not of_kind(rendered_default, "Secret")


def test_existing_secret_replaces_the_charts_secret(render: Any) -> None:
    objects = render(
        extra=(
            "--set",
            "secrets.existingSecret=prod-credentials",
            "--set",
            "kafka.saslMechanism=SCRAM-SHA-512",
        )
    )
    assert not of_kind(objects, "Secret")
    refs = secret_refs(objects)
    assert refs.pop(("airline-etl", "DATABASE_URL")) == ("postgres-app", "uri")
    assert set(refs.values()) == {("prod-credentials", "kafka-sasl-password")}
    assert {name for name, _ in refs} == {COMPONENTS[c][0] for c in SERVICES}


def test_the_charts_secret_holds_the_database_url_when_no_secret_is_named(
    render: Any, k8s_tools: Tools
) -> None:
    objects = render(
        extra=(
            "--set",
            "database.existingSecret=",
            "--set-string",
            "secrets.databaseUrl=postgresql://u:p@db/x",
        )
    )
    (secret,) = of_kind(objects, "Secret")
    assert secret["stringData"] == {"database-url": "postgresql://u:p@db/x"}
    assert secret_refs(objects) == {
        ("airline-etl", "DATABASE_URL"): (secret["metadata"]["name"], "database-url")
    }
    missing = k8s_tools.helm(*template_args([], "--set", "database.existingSecret="), check=False)
    assert missing.returncode != 0 and "secrets.databaseUrl is required" in missing.stderr


def test_the_lake_claim_is_shared_by_lake_writer_and_etl(rendered_default: Objects) -> None:
    (claim,) = of_kind(rendered_default, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    for component in ("lakeWriter", "etl"):
        spec = pod_spec(component_workload(rendered_default, component))
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == [claim["metadata"]["name"]], component
    values = (CHART / "values.yaml").read_text()
    assert "ReadWriteMany" in values and "one node" in values.lower()


def test_service_monitors_are_gated_and_labelled_for_kube_prometheus_stack(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    assert not of_kind(rendered_default, "ServiceMonitor")
    monitors = of_kind(rendered_ci["monitoring-values.yaml"], "ServiceMonitor")
    assert len(monitors) == len(SERVICES)
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_network_policies_are_gated(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    assert not of_kind(rendered_default, "NetworkPolicy")
    policies = of_kind(rendered_ci["production-values.yaml"], "NetworkPolicy")
    assert len(policies) == 4
    etl = named(policies, "NetworkPolicy", "airline-etl")
    assert etl["spec"]["ingress"] == []


def kafka_namespace(values: dict[str, Any]) -> str:
    """Where the Kafka cluster lives, read from the values as an operator would: the namespace
    in the bootstrap Service's DNS name (<service>.<namespace>.svc), else kafka.namespace, else
    the release's."""
    host = values["bootstrapServers"].split(",")[0].split(":")[0]
    parts = host.split(".")
    if len(parts) >= 2 and parts[0] == f"{values['clusterName']}-kafka-bootstrap":
        return parts[1]
    return values.get("namespace") or NAMESPACE


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_kafka_topics_go_to_the_kafka_clusters_namespace(render: Any, values: Any) -> None:
    """Strimzi's topic operator watches only its own Kafka cluster's namespace."""
    kafka = yaml.safe_load((CHART / "values.yaml").read_text())["kafka"] | (
        (yaml.safe_load(values.read_text()) or {}).get("kafka", {})
    )
    topics = of_kind(render(values), "KafkaTopic")
    assert topics
    expected = kafka_namespace(kafka)
    assert {t["metadata"].get("namespace") for t in topics} == {expected}
    if values.name == "production-values.yaml":
        assert expected == "kafka"


def test_kafka_topics_refuse_a_namespace_other_than_the_bootstrap_services(
    k8s_tools: Tools, render: Any
) -> None:
    result = k8s_tools.helm(
        *template_args([CHART / "ci" / "production-values.yaml"], "--set", "kafka.namespace="),
        check=False,
    )
    assert result.returncode != 0 and "set kafka.namespace=kafka" in result.stderr
    topics = of_kind(render(extra=("--set", "kafka.namespace=streaming")), "KafkaTopic")
    assert {t["metadata"]["namespace"] for t in topics} == {"streaming"}


def test_topics_follow_values_dev_one_replica_production_three(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    dev = of_kind(rendered_default, "KafkaTopic")
    assert dev and all(t["spec"]["replicas"] == 1 for t in dev)
    assert all("min.insync.replicas" not in t["spec"]["config"] for t in dev)
    prod = of_kind(rendered_ci["production-values.yaml"], "KafkaTopic")
    assert prod and all(t["spec"]["replicas"] == 3 for t in prod)
    assert all(t["spec"]["config"]["min.insync.replicas"] == "2" for t in prod)
    for topic in dev + prod:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", topic["metadata"]["name"])
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "airline"


def test_engine_replicas_are_bounded_by_partitions(k8s_tools: Tools) -> None:
    result = k8s_tools.helm(
        "template",
        "airline",
        str(CHART),
        "--kube-version",
        KUBERNETES_VERSION,
        "--set",
        "engine.replicas=4",
        check=False,
    )
    assert result.returncode != 0
    assert "must not exceed topics.partitions" in result.stderr


def test_values_schema_rejects_a_second_producer(k8s_tools: Tools) -> None:
    result = k8s_tools.helm(
        "template", "airline", str(CHART), "--set", "producer.replicas=2", check=False
    )
    assert result.returncode != 0 and "producer/replicas" in result.stderr


@pytest.mark.parametrize(
    "setting",
    [
        "engine.config.ENGINE_POLYCY=x",
        "producer.config.PRODUCER_SPEEED=60",
        "engine.config.ENGINE_POLICY=revnue",
        "engine.config.KAFKA_BOOTSTRAP_SERVERS=elsewhere:9092",
    ],
)
def test_values_schema_rejects_config_a_component_does_not_read(
    k8s_tools: Tools, setting: str
) -> None:
    """A misspelt key, a value outside a setting's choices, or a setting the chart sets itself
    fails the install instead of being ignored."""
    result = k8s_tools.helm(*template_args([], "--set", setting), check=False)
    assert result.returncode != 0, f"--set {setting} rendered"
    path, key = setting.split("=")[0].rsplit(".", 1)
    assert f"at '/{path.replace('.', '/')}" in result.stderr, result.stderr
    assert key in result.stderr, result.stderr


# --------------------------------------------------------------------------- identities, images
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_workload_runs_as_its_own_service_account(render: Any, values: Any) -> None:
    objects = render(values)
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    used = {}
    for component, (name, _, _) in COMPONENTS.items():
        spec = pod_spec(component_workload(objects, component))
        used[component] = spec["serviceAccountName"]
        assert spec["serviceAccountName"] == name, component
        assert spec["automountServiceAccountToken"] is False, component
        assert accounts[name]["automountServiceAccountToken"] is False, name
    assert len(set(used.values())) == len(COMPONENTS)
    assert set(accounts) == set(used.values())


def test_service_accounts_take_a_name_and_annotations_or_are_not_created(render: Any) -> None:
    objects = render(
        extra=(
            "--set",
            "engine.serviceAccount.name=engine-identity",
            "--set",
            "engine.serviceAccount.annotations.iam\\.example\\.com/role=engine",
            "--set",
            "etl.serviceAccount.create=false",
            "--set",
            "producer.serviceAccount.create=false",
            "--set",
            "producer.serviceAccount.name=shared-identity",
        )
    )
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(objects, "ServiceAccount")}
    assert set(accounts) == {"engine-identity", "airline-lake-writer"}
    assert accounts["engine-identity"]["metadata"]["annotations"] == {
        "iam.example.com/role": "engine"
    }
    names = {c: pod_spec(component_workload(objects, c))["serviceAccountName"] for c in COMPONENTS}
    assert names == {
        "producer": "shared-identity",
        "engine": "engine-identity",
        "lakeWriter": "airline-lake-writer",
        "etl": "default",
    }


def test_engine_disruption_budget_when_several_engines_selects_only_engines(
    render: Any, rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    assert not of_kind(rendered_default, "PodDisruptionBudget"), "one engine: nothing to keep"
    objects = rendered_ci["production-values.yaml"]
    (budget,) = of_kind(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    selector = budget["spec"]["selector"]["matchLabels"].items()
    for workload in workloads(objects):
        selects = selector <= pod_template_metadata(workload)["labels"].items()
        assert selects == (workload["metadata"]["name"] == "airline-engine"), workload["metadata"][
            "name"
        ]
    forced = render(extra=("--set", "engine.podDisruptionBudget.enabled=true"))
    assert len(of_kind(forced, "PodDisruptionBudget")) == 1
    off = render(
        CHART / "ci" / "production-values.yaml",
        extra=("--set", "engine.podDisruptionBudget.enabled=false"),
    )
    assert not of_kind(off, "PodDisruptionBudget")


def image_of(objects: Objects, component: str) -> str:
    (container,) = pod_spec(component_workload(objects, component))["containers"]
    return str(container["image"])


def test_image_tag_defaults_to_the_charts_app_version(rendered_default: Objects) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    for component, (name, _, _) in COMPONENTS.items():
        assert yaml.safe_load((CHART / "values.yaml").read_text())[component]["image"]["tag"] == ""
        assert image_of(rendered_default, component) == f"{name}:{app_version}"


def test_image_digest_pins_with_or_without_a_tag(render: Any, k8s_tools: Tools) -> None:
    objects = render(
        extra=(
            "--set",
            f"engine.image.digest={DIGEST}",
            "--set",
            f"producer.image.digest={DIGEST}",
            "--set",
            "producer.image.tag=1.2.3",
        )
    )
    assert image_of(objects, "engine") == f"airline-engine@{DIGEST}"
    assert image_of(objects, "producer") == f"airline-producer:1.2.3@{DIGEST}"
    bad = k8s_tools.helm(*template_args([], "--set", "engine.image.digest=latest"), check=False)
    assert bad.returncode != 0 and "engine/image/digest" in bad.stderr


def notes(k8s_tools: Tools, *extra: str) -> str:
    out = k8s_tools.helm(
        "install", "airline", str(CHART), "--dry-run=client", "--namespace", "airline", *extra
    ).stdout
    return out[out.index("NOTES:") :]


def test_notes_tell_tableau_grafana_logs_and_warn_at_the_engine_bound(k8s_tools: Tools) -> None:
    text = notes(k8s_tools)
    assert "kubectl -n airline port-forward svc/postgres-ro 5432:5432" in text
    assert "user airline_bi" in text and "Secret postgres-app, key uri" in text
    assert "kubectl -n airline logs" in text
    assert "helm test airline" in text
    assert "WARNING" not in text
    bounded = notes(
        k8s_tools,
        "--set",
        "engine.replicas=3",
        "--values",
        str(CHART / "ci" / "monitoring-values.yaml"),
    )
    assert "WARNING: engine.replicas is at its bound" in bounded
    assert "port-forward svc/kube-prometheus-stack-grafana 3000:80" in bounded


def test_helm_test_asks_every_services_readyz(k8s_tools: Tools) -> None:
    """The helm test pod's command, run as a process against a local /readyz answering 200."""
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import yaml
    from k8s_support import VENV_BIN

    out = k8s_tools.helm(
        "template", "airline", str(CHART), "--show-only", "templates/tests/test-readyz.yaml"
    ).stdout
    (container,) = yaml.safe_load(out)["spec"]["containers"]
    code, *urls = container["args"]
    assert urls == [
        "http://airline-producer:8001/readyz",
        "http://airline-engine:8002/readyz",
        "http://airline-lake-writer:8003/readyz",
    ]
    asked: list[str] = []

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200 if self.path.startswith("/readyz?") else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        local = [
            re.sub(r"//([^/:]+):\d+/readyz", rf"//127.0.0.1:{port}/readyz?\1", u) for u in urls
        ]
        command = [str(VENV_BIN / container["command"][0]), *container["command"][1:]]
        result = subprocess.run(
            [*command, code, *local], capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(asked) == sorted(f"/readyz?{u.split('/')[2].split(':')[0]}" for u in urls)


def test_grafana_dashboard_is_gated_and_queries_real_metrics(
    rendered_default: Objects, rendered_ci: dict[str, Objects]
) -> None:
    import json

    from k8s_support import REPO_ROOT

    assert not [
        c
        for c in of_kind(rendered_default, "ConfigMap")
        if "grafana_dashboard" in c["metadata"].get("labels", {})
    ]
    (config_map,) = [
        c
        for c in of_kind(rendered_ci["monitoring-values.yaml"], "ConfigMap")
        if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    dashboards = CHART / "dashboards"
    assert config_map["data"] == {p.name: p.read_text().rstrip("\n")
                                  for p in dashboards.glob("*.json")}
    dashboard = json.loads(config_map["data"]["airline-streaming.json"])
    defined = set()
    for path in [
        *REPO_ROOT.glob("services/*/src/*/metrics.py"),
        *REPO_ROOT.glob("jobs/*/src/*/metrics.py"),
    ]:
        defined |= set(
            re.findall(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"(\w+)\"", path.read_text())
        )
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b([a-z_]+?)(?:_bucket)?\{", target["expr"])
    } - {"up"}
    assert used and used <= defined, f"dashboard queries unknown metrics: {used - defined}"
