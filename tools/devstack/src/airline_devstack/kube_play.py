"""The rendered chart as something ``podman kube play`` runs: each workload becomes the Pod (or
Pods) a cluster would create from it, with only what a single host without an API server forces
changed.

``podman kube play`` runs Pods and Deployments but skips StatefulSets, CronJobs and Services,
rejects Pod annotations over 63 characters and has no kubelet; so, per rule:

* **Deployment** with ``replicas: n`` (n > 0): one Pod ``<name>`` from its template (the chart
  runs at most one replica of each; a Deployment's pod names are random anyway).
* **StatefulSet** with ``replicas: n``: Pods ``<name>-0`` … ``<name>-(n-1)``, each with its
  ordinal identity: ``metadata.name`` and ``hostname`` are the pod name, and ``fieldRef``
  environment values are resolved from that name, as the kubelet resolves them.
* **CronJob**: one Pod ``<name>-manual`` from its job template, ``restartPolicy: Never``, i.e.
  ``kubectl create job --from=cronjob/<name>``: run once, by whoever plays it.
* Every Pod: ``hostNetwork: true`` and no container ``ports`` (every connection stays on this
  host's loopback; the Services that would route to the ports do not exist), no probes (podman
  would turn HTTP probes into curl inside images that have no curl; the caller polls /readyz
  from the host instead), annotations longer than 63 characters dropped (the ``checksum/*``
  restart triggers, which mean nothing to a single run), and the ServiceAccount fields dropped
  (there is no API server whose token could be mounted).
* **PersistentVolumeClaim** volumes become podman named volumes of the claim's name, which the
  caller creates with the pod's ``fsGroup`` owning them, as the kubelet would (podman applies no
  fsGroup). **emptyDir** stays as it is.
* **ConfigMap**s are played alongside. **Secret**s are handed back for ``podman secret
  create``: podman's kube play resolves ``secretKeyRef`` from a podman secret of the same name
  whose content is the JSON of the Secret's ``data`` (key -> base64), so ``stringData`` is
  encoded into it, as the API server stores it.
* Everything else (Services, KafkaTopics, ServiceMonitors, NetworkPolicies,
  PodDisruptionBudgets, ServiceAccounts, Helm test hooks) has no meaning on one host and is
  listed in ``Playable.skipped``; the caller creates the KafkaTopics' topics itself, as
  Strimzi's topic operator would.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

MAX_POD_ANNOTATION = 63
#: What the kubelet puts into ``fieldRef`` environment values, on one host.
_FIELD_VALUES = {"metadata.name": None, "metadata.namespace": None, "spec.nodeName": "localhost",
                 "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}


@dataclass
class PlayPod:
    """One Pod to play, and where it came from."""

    name: str
    workload_kind: str
    workload: str
    manifest: Obj
    run_once: bool

    @property
    def containers(self) -> list[Obj]:
        return list(self.manifest["spec"]["containers"])


@dataclass
class Playable:
    """What ``podman kube play`` gets: the Pods, the ConfigMaps, the Secrets (for ``podman secret
    create``), the named volumes to create with their owner gid, and what was left out."""

    pods: list[PlayPod] = field(default_factory=list)
    configmaps: list[Obj] = field(default_factory=list)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    volumes: dict[str, int | None] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def pod(self, name: str) -> PlayPod:
        for pod in self.pods:
            if pod.name == name:
                return pod
        raise KeyError(f"no pod {name!r} among {[p.name for p in self.pods]}")


def _is_helm_hook(obj: Obj) -> bool:
    return "helm.sh/hook" in (obj.get("metadata", {}).get("annotations") or {})


def _resolve_field_ref(value_from: Obj, pod_name: str, namespace: str) -> str | None:
    path = value_from["fieldRef"]["fieldPath"]
    if path not in _FIELD_VALUES:
        raise ValueError(f"fieldRef {path!r}: no value outside a cluster")
    return {"metadata.name": pod_name, "metadata.namespace": namespace}.get(path) or \
        _FIELD_VALUES[path]


def _pod(name: str, namespace: str, template: Obj, *, hostname: bool, run_once: bool) -> Obj:
    template = copy.deepcopy(template)
    metadata = template.get("metadata") or {}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if len(str(v)) <= MAX_POD_ANNOTATION}
    spec = template["spec"]
    for key in ("serviceAccountName", "serviceAccount", "automountServiceAccountToken"):
        spec.pop(key, None)
    spec["hostNetwork"] = True
    if hostname:
        spec["hostname"] = name
    if run_once:
        spec["restartPolicy"] = "Never"
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for key in ("ports", "startupProbe", "livenessProbe", "readinessProbe"):
            container.pop(key, None)
        for env in container.get("env", []):
            if "fieldRef" in (env.get("valueFrom") or {}):
                env["value"] = _resolve_field_ref(env.pop("valueFrom"), name, namespace)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": dict(metadata.get("labels") or {}),
                         **({"annotations": annotations} if annotations else {})},
            "spec": spec}


def stored_secret_data(secret: Obj) -> dict[str, str]:
    """The Secret's ``data`` as the API server stores it: ``stringData`` base64-encoded into it
    (and winning over ``data`` for the same key, as in Kubernetes)."""
    data = dict(secret.get("data") or {})
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return data


def _claims(spec: Obj) -> Iterable[str]:
    for volume in spec.get("volumes", []):
        claim = volume.get("persistentVolumeClaim")
        if claim:
            yield claim["claimName"]


def to_playable(objects: list[Obj], namespace: str) -> Playable:
    """Convert rendered manifests by the rules of this module's docstring."""
    out = Playable()
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if _is_helm_hook(obj):
            out.skipped.append(f"{kind}/{name} (helm hook)")
        elif kind == "ConfigMap":
            out.configmaps.append(obj)
        elif kind == "Secret":
            out.secrets[name] = stored_secret_data(obj)
        elif kind == "Deployment":
            if obj["spec"].get("replicas", 1) > 0:
                out.pods.append(PlayPod(name, kind, name, _pod(
                    name, namespace, obj["spec"]["template"], hostname=False, run_once=False),
                    run_once=False))
        elif kind == "StatefulSet":
            for ordinal in range(obj["spec"].get("replicas", 1)):
                pod_name = f"{name}-{ordinal}"
                out.pods.append(PlayPod(pod_name, kind, name, _pod(
                    pod_name, namespace, obj["spec"]["template"], hostname=True,
                    run_once=False), run_once=False))
        elif kind == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
            pod_name = f"{name}-manual"
            out.pods.append(PlayPod(pod_name, kind, name, _pod(
                pod_name, namespace, template, hostname=False, run_once=True), run_once=True))
        else:
            out.skipped.append(f"{kind}/{name}")
    for pod in out.pods:
        gid = (pod.manifest["spec"].get("securityContext") or {}).get("fsGroup")
        for claim in _claims(pod.manifest["spec"]):
            out.volumes[claim] = gid
    return out

