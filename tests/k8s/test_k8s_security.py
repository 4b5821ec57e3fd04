"""One Kafka identity per component in the chart (kafka.users.create, as the production values
set it): a Strimzi KafkaUser per component whose ACLs equal ``airline_core.acls`` for the same
topic prefix, and each component connecting as its own user with the password from that user's
own Secret, never a shared one."""

from __future__ import annotations

from typing import Any

import pytest
from airline_core import acls
from k8s_support import (
    CHART,
    COMPONENTS,
    REPO_ROOT,
    SERVICES,
    component_workload,
    load_documents,
    of_kind,
    pod_spec,
)

pytestmark = pytest.mark.k8s
PRODUCTION = CHART / "ci" / "production-values.yaml"


def granted(user: dict[str, Any]) -> set[tuple[str, str, bool, str]]:
    """(kind, name, prefixed, operation) of every ACL of a rendered KafkaUser."""
    return {(acl["resource"]["type"], acl["resource"]["name"],
             acl["resource"]["patternType"] == "prefix", operation)
            for acl in user["spec"]["authorization"]["acls"] for operation in acl["operations"]}


def expected(component: str, prefix: str) -> set[tuple[str, str, bool, str]]:
    return {(g.kind, g.name, g.prefixed, op) for g in acls.grants(component, prefix)
            for op in g.operations}


@pytest.mark.parametrize("prefix", ["", "staging."])
def test_every_kafka_user_has_exactly_the_grants_of_its_component(
        render: Any, prefix: str) -> None:
    objects = render(PRODUCTION, extra=("--set", f"kafka.topicPrefix={prefix}"))
    users = {u["metadata"]["labels"]["app.kubernetes.io/component"]: u
             for u in of_kind(objects, "KafkaUser")}
    assert set(users) == set(SERVICES)
    for key, user in users.items():
        component = COMPONENTS[key][0]
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "airline"
        assert granted(user) == expected(component, prefix), component


def _env_sources(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item.get("valueFrom", item) for item in container.get("env", [])}


def test_each_component_connects_as_its_own_user_with_its_own_secret(render: Any) -> None:
    objects = render(PRODUCTION)
    configs = {c["metadata"]["name"]: c["data"] for c in of_kind(objects, "ConfigMap")}
    users = {u["metadata"]["labels"]["app.kubernetes.io/component"]: u["metadata"]["name"]
             for u in of_kind(objects, "KafkaUser")}
    seen = set()
    for key in SERVICES:
        container = pod_spec(component_workload(objects, key))["containers"][0]
        sources = _env_sources(container)
        username_ref = sources["KAFKA_SASL_USERNAME"]["configMapKeyRef"]
        assert configs[username_ref["name"]][username_ref["key"]] == users[key]
        assert sources["KAFKA_SASL_PASSWORD"]["secretKeyRef"] == {"name": users[key],
                                                                  "key": "password"}
        seen.add(users[key])
    assert len(seen) == len(SERVICES), "two components share a Kafka identity"
    for secret in of_kind(objects, "Secret"):
        assert "kafka-sasl-password" not in (secret.get("data") or {})


def test_without_users_the_shared_identity_stays_as_configured(render: Any) -> None:
    objects = render(extra=("--set", "kafka.saslMechanism=SCRAM-SHA-512", "--set",
                            "kafka.saslUsername=shared", "--set-string",
                            "secrets.kafkaSaslPassword=pw"))
    assert not of_kind(objects, "KafkaUser")
    for key in SERVICES:
        container = pod_spec(component_workload(objects, key))["containers"][0]
        assert _env_sources(container)["KAFKA_SASL_PASSWORD"]["secretKeyRef"]["key"] == (
            "kafka-sasl-password")


POWERS = ("superuser", "createrole", "createdb", "replication", "bypassrls")


def test_no_component_connects_to_postgres_as_a_superuser(render: Any) -> None:
    """The warehouse's operator gives no superuser access, its two login roles have no powers
    beyond their data, and the ETL (the only component with a database) logs in as the owner
    of airline_dw from the operator's app Secret, never the superuser's."""
    docs = load_documents((REPO_ROOT / "k8s" / "base" / "postgres.yaml").read_text())
    (cluster,) = [d for d in docs if d["kind"] == "Cluster"]
    assert not cluster["spec"].get("enableSuperuserAccess", False)
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == {"airline", "airline_bi"}
    for role in roles.values():
        assert not any(role.get(power, False) for power in POWERS), role
    for values in (None, PRODUCTION):
        objects = render(values) if values else render()
        etl = pod_spec(component_workload(objects, "etl"))["containers"][0]
        ref = _env_sources(etl)["DATABASE_URL"]["secretKeyRef"]
        assert "superuser" not in ref["name"], ref
        for key in SERVICES:
            container = pod_spec(component_workload(objects, key))["containers"][0]
            assert "DATABASE_URL" not in _env_sources(container), key
