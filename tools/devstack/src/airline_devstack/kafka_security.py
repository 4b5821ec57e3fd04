"""A secured local broker: a SASL_SSL listener (SCRAM-SHA-512 over TLS, a certificate made for
the run), one SCRAM identity per component plus an admin, and Kafka's ACL authorizer with the
grants of :mod:`airline_core.acls`, nothing else allowed.

The broker has no plaintext client listener. Its controller listener stays plaintext on
loopback (the single node talks to itself there), and its principal, ``User:ANONYMOUS``, is a
super user only because that listener accepts controller requests alone.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airline_core import acls
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
#: The components given an identity of their own (the admin creates topics and ACLs).
USERS: tuple[str, ...] = (ADMIN, *acls.COMPONENTS)

_KINDS = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
          "transactionalId": ResourceType.TRANSACTIONAL_ID}
_OPERATIONS = {"Read": AclOperation.READ, "Write": AclOperation.WRITE,
               "Describe": AclOperation.DESCRIBE}


@dataclass(frozen=True)
class BrokerSecurity:
    """The TLS material and the SCRAM identities of one secured broker."""

    directory: Path
    passwords: Mapping[str, str] = field(default_factory=dict)
    keystore_password: str = ""

    @property
    def keystore(self) -> Path:
        return self.directory / "broker.p12"

    @property
    def ca_pem(self) -> Path:
        """The certificate clients trust (``KAFKA_SSL_CA_LOCATION``)."""
        return self.directory / "ca.pem"

    def environment(self, user: str) -> dict[str, str]:
        """The components' settings that connect as ``user`` (see ``docs/settings.md``)."""
        return {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": MECHANISM,
                "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": self.passwords[user],
                "KAFKA_SSL_CA_LOCATION": str(self.ca_pem)}

    def client_config(self, bootstrap: str, user: str = ADMIN) -> dict[str, Any]:
        """librdkafka settings for ``user`` (the admin by default)."""
        return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": MECHANISM, "sasl.username": user,
                "sasl.password": self.passwords[user], "ssl.ca.location": str(self.ca_pem)}

    def server_properties(self, port: int, controller_port: int) -> dict[str, str]:
        """What a secured broker adds to (and replaces in) the plain one's configuration."""
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{ADMIN}" password="{self.passwords[ADMIN]}";')
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.keystore_password,
            "ssl.key.password": self.keystore_password,
            # The broker's own client (inter-broker) trusts what the clients trust.
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_pem),
            "authorizer.class.name":
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
        }

    def scram_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create every identity."""
        return [arg for user in USERS for arg in (
            "--add-scram", f"{MECHANISM}=[name={user},password={self.passwords[user]}]")]


def create(directory: Path, keytool: str = "keytool") -> BrokerSecurity:
    """New passwords and a self-signed certificate for 127.0.0.1 and localhost (valid 30 days),
    in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    security = BrokerSecurity(directory, {user: secrets.token_urlsafe(18) for user in USERS},
                              secrets.token_urlsafe(18))
    security.keystore.unlink(missing_ok=True)
    common = ["-keystore", str(security.keystore), "-storetype", "PKCS12",
              "-storepass", security.keystore_password]
    _keytool(keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
             "-validity", "30", "-dname", "CN=localhost,O=airline-streaming dev",
             "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-ext", "bc:c",
             "-keypass", security.keystore_password, *common)
    _keytool(keytool, "-exportcert", "-rfc", "-alias", "broker", "-file", str(security.ca_pem),
             *common)
    return security


def _keytool(keytool: str, *args: str) -> None:
    result = subprocess.run([keytool, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"keytool {args[0]} failed: {result.stderr.strip() or result.stdout}")


def bindings(user: str, grants: Iterable[acls.Grant]) -> list[AclBinding]:
    """Kafka ACL bindings (allow, any host) of ``grants`` for ``user``."""
    return [AclBinding(_KINDS[g.kind], g.name,
                       ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
                       f"User:{user}", "*", _OPERATIONS[op], AclPermissionType.ALLOW)
            for g in grants for op in g.operations]


def apply_grants(admin: AdminClient, topic_prefix: str = "", timeout: float = 30.0) -> int:
    """Create every component's ACLs (idempotent); the number of bindings."""
    wanted = [b for c in acls.COMPONENTS for b in bindings(c, acls.grants(c, topic_prefix))]
    for future in admin.create_acls(wanted, request_timeout=timeout).values():
        future.result(timeout)
    return len(wanted)
