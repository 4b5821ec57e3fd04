"""The conversion of the rendered chart into what ``podman kube play`` runs
(airline_devstack.kube_play): each rule of its docstring, on the chart as rendered for
development and for production (three engines)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from airline_devstack.kube_play import MAX_POD_ANNOTATION, to_playable
from k8s_support import CHART, NAMESPACE, WORKLOAD_KINDS, of_kind, pod_spec

pytestmark = pytest.mark.k8s

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def production(render: Any) -> Objects:
    return render(CHART / "ci" / "production-values.yaml")


def test_a_statefulset_becomes_one_pod_per_ordinal_with_its_identity(production: Objects
                                                                     ) -> None:
    (engine,) = of_kind(production, "StatefulSet")
    replicas = engine["spec"]["replicas"]
    assert replicas == 3, "production values run three engines"
    playable = to_playable(production, NAMESPACE)
    pods = [p for p in playable.pods if p.workload_kind == "StatefulSet"]
    assert [p.name for p in pods] == [f"airline-engine-{i}" for i in range(replicas)]
    for pod in pods:
        assert pod.manifest["metadata"]["name"] == pod.manifest["spec"]["hostname"] == pod.name
        (container,) = pod.containers
        env = {e["name"]: e for e in container["env"]}
        assert env["KAFKA_GROUP_INSTANCE_ID"] == {"name": "KAFKA_GROUP_INSTANCE_ID",
                                                  "value": pod.name}
        assert not any("fieldRef" in (e.get("valueFrom") or {}) for e in env.values())


def test_a_cronjob_becomes_one_pod_that_runs_once(rendered_default: Objects) -> None:
    (cronjob,) = of_kind(rendered_default, "CronJob")
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod = to_playable(rendered_default, NAMESPACE).pod("airline-etl-manual")
    assert pod.run_once and pod.workload_kind == "CronJob"
    assert pod.manifest["spec"]["restartPolicy"] == "Never"
    (played,), (original,) = pod.containers, template["containers"]
    for key in ("image", "command", "args", "env", "envFrom", "volumeMounts", "securityContext"):
        assert played.get(key) == original.get(key), key


@pytest.mark.parametrize("variant", ["default", "production"])
def test_every_pod_is_host_networked_without_ports_probes_long_annotations_or_account(
    variant: str, rendered_default: Objects, production: Objects,
) -> None:
    rendered = rendered_default if variant == "default" else production
    playable = to_playable(rendered, NAMESPACE)
    workloads = [o for o in rendered if o["kind"] in WORKLOAD_KINDS]
    assert {p.workload for p in playable.pods} == {w["metadata"]["name"] for w in workloads}
    for pod in playable.pods:
        spec = pod.manifest["spec"]
        assert spec["hostNetwork"] is True
        assert not {"serviceAccountName", "automountServiceAccountToken"} & spec.keys()
        for value in (pod.manifest["metadata"].get("annotations") or {}).values():
            assert len(value) <= MAX_POD_ANNOTATION
        for container in spec["containers"]:
            assert not {"ports", "startupProbe", "livenessProbe", "readinessProbe"} & \
                container.keys(), pod.name
        # What the test of the containers checks at run time stays as the chart set it.
        original = pod_spec(next(w for w in workloads if w["metadata"]["name"] == pod.workload))
        assert spec["securityContext"] == original["securityContext"]
        assert spec["volumes"] == original["volumes"]


def test_secrets_are_stored_as_the_api_server_stores_them(rendered_default: Objects) -> None:
    secrets = {s["metadata"]["name"]: s for s in of_kind(rendered_default, "Secret")}
    playable = to_playable(rendered_default, NAMESPACE)
    assert set(playable.secrets) == set(secrets)
    for name, secret in secrets.items():
        plain = {**{k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()},
                 **(secret.get("stringData") or {})}
        stored = {k: base64.b64decode(v).decode() for k, v in playable.secrets[name].items()}
        assert stored == plain


def test_claims_become_volumes_owned_by_the_pods_fs_group(rendered_default: Objects) -> None:
    playable = to_playable(rendered_default, NAMESPACE)
    (claim,) = of_kind(rendered_default, "PersistentVolumeClaim")
    gid = pod_spec(of_kind(rendered_default, "CronJob")[0])["securityContext"]["fsGroup"]
    assert playable.volumes == {claim["metadata"]["name"]: gid}


def test_what_has_no_meaning_on_one_host_is_listed_as_skipped(rendered_default: Objects) -> None:
    playable = to_playable(rendered_default, NAMESPACE)
    played = {"ConfigMap", "Secret", *WORKLOAD_KINDS}
    expected = {f"{o['kind']}/{o['metadata']['name']}" for o in rendered_default
                if o["kind"] not in played}
    hooks = {s for s in playable.skipped if s.endswith("(helm hook)")}
    assert {s.removesuffix(" (helm hook)") for s in playable.skipped} == expected
    assert hooks == {"Pod/airline-test-readyz (helm hook)"}
    assert len(playable.configmaps) == len(of_kind(rendered_default, "ConfigMap"))


def test_a_field_ref_without_a_value_on_one_host_is_refused(rendered_default: Objects) -> None:
    objects = copy.deepcopy(rendered_default)
    (engine,) = of_kind(objects, "StatefulSet")
    pod_spec(engine)["containers"][0]["env"].append(
        {"name": "NODE_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}})
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        to_playable(objects, NAMESPACE)
