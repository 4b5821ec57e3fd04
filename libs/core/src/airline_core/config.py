"""Configuration: environment variables with documented defaults, loaded once into frozen objects.

A component declares its settings as a frozen dataclass whose fields are made with
:func:`setting`; nested dataclasses (such as :class:`KafkaSettings`) group shared settings. Then
:func:`load` builds the ``--help`` text from the declarations, reads each value from its command
line flag, else its environment variable, else its default, converts it by the field's type, and
stops with one line naming the setting when a value is missing or malformed. The same names are
used in code, in the Helm chart and in the README.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

from airline_core.errors import ConfigError

T = TypeVar("T")
REQUIRED: Final = dataclasses.MISSING


class Secret:
    """A value that never prints: ``str()`` and ``repr()`` show ``***``; use :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def setting(
    env: str,
    default: Any = REQUIRED,
    help: str = "",
    *,
    flag: str | None = "",
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """Declare a dataclass field read from environment variable ``env``.

    ``flag`` is the command line option (default: ``--`` + field name with dashes; ``None`` for
    none). ``check`` returns an error text for a value that parses but is not allowed.
    """
    meta = {"env": env, "help": help, "flag": flag, "check": check}
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def group(cls: type[T]) -> T:
    """Declare a nested group of settings (e.g. ``kafka: KafkaSettings = group(KafkaSettings)``)."""
    return dataclasses.field(default_factory=cls)


def positive(value: Any) -> str | None:
    """``check`` for settings that must be > 0."""
    return None if value > 0 else "must be greater than 0"


def non_negative(value: Any) -> str | None:
    """``check`` for settings that must be >= 0."""
    return None if value >= 0 else "must be 0 or more"


# --------------------------------------------------------------------------- shared settings
def _valid_port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port (0 picks a free one)"


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    """How to reach Kafka. Security settings pass straight through to librdkafka."""

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "Kafka bootstrap servers (host:port,...)")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = setting(
        "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "Kafka security.protocol")
    sasl_mechanism: str = setting(
        "KAFKA_SASL_MECHANISM", "", "SASL mechanism, e.g. SCRAM-SHA-512 (empty: none)")
    sasl_username: str = setting("KAFKA_SASL_USERNAME", "", "SASL user name")
    sasl_password: Secret = setting(
        "KAFKA_SASL_PASSWORD", Secret(""), "SASL password (secret)", flag=None)
    ssl_ca_location: str = setting(
        "KAFKA_SSL_CA_LOCATION", "", "CA certificate file for TLS (empty: system default)")
    ssl_certificate_location: str = setting(
        "KAFKA_SSL_CERTIFICATE_LOCATION", "", "client certificate file for mutual TLS")
    ssl_key_location: str = setting("KAFKA_SSL_KEY_LOCATION", "", "client key file for mutual TLS")
    topic_prefix: str = setting(
        "KAFKA_TOPIC_PREFIX", "", "prefix of every topic name on the broker (isolates tenants "
        "or tests; the lake and warehouse keep the logical names)")


@dataclasses.dataclass(frozen=True)
class LogSettings:
    """Logging: JSON in the cluster, readable at a terminal."""

    format: Literal["auto", "json", "console"] = setting(
        "LOG_FORMAT", "auto", "log format: json, console, or auto (console at a terminal)",
        flag="--log-format")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        "LOG_LEVEL", "INFO", "log level", flag="--log-level")


@dataclasses.dataclass(frozen=True)
class ConsumerSettings:
    """How a long-running service consumes: one name for each knob, in every service."""

    group_instance_id: str = setting(
        "KAFKA_GROUP_INSTANCE_ID", "",
        "stable name of this instance for static group membership (a StatefulSet pod name): a "
        "restarted instance gets its partitions back without a rebalance (empty: the engine "
        "uses $HOSTNAME, the lake writer joins without one)")
    batch_size: int = setting(
        "KAFKA_CONSUMER_BATCH_SIZE", 2000, "records fetched per consume() call",
        check=positive)
    statistics_interval_ms: int = setting(
        "KAFKA_STATISTICS_INTERVAL_MS", 5000,
        "librdkafka statistics interval, the source of the consumer lag metric (0: off)",
        check=non_negative)
    session_timeout_ms: int = setting(
        "KAFKA_SESSION_TIMEOUT_MS", 45000,
        "consumer group session timeout: a vanished static member keeps its partitions this "
        "long", check=positive)


def metrics_port(default: int) -> Any:
    """Declare ``METRICS_PORT`` with a component's own default."""
    return setting("METRICS_PORT", default,
                   "port of /metrics, /healthz and /readyz (0 picks a free port)",
                   check=_valid_port)


def database_url() -> Any:
    """Declare ``DATABASE_URL`` (a secret: it carries the password)."""
    return setting(
        "DATABASE_URL", Secret("postgresql://airline:airline@localhost:5432/airline_dw"),
        "Postgres warehouse URL (secret; printed with the password masked)", flag=None)


def lake_dir() -> Any:
    """Declare ``LAKE_DIR`` (raw files under ``raw/``, gold parquet under ``gold/``)."""
    return setting("LAKE_DIR", Path("lake"), "data lake root: raw/ and gold/ live under it")


def stop_when_idle() -> Any:
    """Declare ``--stop-when-idle`` for consumers (bounded runs for demos, tests, benchmarks)."""
    return setting(
        "STOP_WHEN_IDLE_SECONDS", 0.0,
        "exit 0 once caught up on every assigned partition, with nothing new for this many "
        "seconds and everything committed (0: run forever)",
        flag="--stop-when-idle", check=non_negative)


# --------------------------------------------------------------------------- loading
def _fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield f, hints[f.name]


def _is_settings_class(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(raw: str, tp: Any, env: str) -> Any:
    """Convert ``raw`` to type ``tp`` or raise :class:`ConfigError` naming ``env``."""
    origin = get_origin(tp)
    if origin is Literal:
        choices = [str(c) for c in get_args(tp)]
        if raw not in choices:
            raise ConfigError(f"{env}={raw!r} is not one of {', '.join(choices)}")
        return raw
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return None if raw == "" else _convert(raw, inner[0], env)
    try:
        if tp is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if tp in (int, float, str, Path, Secret):
            return tp(raw)
    except ValueError:
        raise ConfigError(f"{env}={raw!r} is not a valid {tp.__name__}") from None
    raise TypeError(f"setting {env} has unsupported type {tp!r}")


def _flag(f: dataclasses.Field[Any]) -> str | None:
    flag = f.metadata["flag"]
    return "--" + f.name.replace("_", "-") if flag == "" else flag


def _show_default(f: dataclasses.Field[Any]) -> str:
    if f.default is dataclasses.MISSING:
        return "required"
    if isinstance(f.default, Secret):
        return "set" if f.default else "empty"
    return repr(str(f.default))


def _add_arguments(parser: argparse.ArgumentParser, cls: type, seen: set[str]) -> None:
    for f, tp in _fields(cls):
        if _is_settings_class(tp):
            _add_arguments(parser, tp, seen)
            continue
        flag = _flag(f)
        if flag is None or flag in seen:
            continue
        seen.add(flag)
        help_text = f"{f.metadata['help']} [env {f.metadata['env']}; default {_show_default(f)}]"
        # A boolean also works as a bare flag (``--full``), or with a value (``--full false``).
        if tp is bool:
            parser.add_argument(flag, dest=f.metadata["env"], default=None, metavar="VALUE",
                                help=help_text.replace("%", "%%"), nargs="?", const="true")
        else:
            parser.add_argument(flag, dest=f.metadata["env"], default=None, metavar="VALUE",
                                help=help_text.replace("%", "%%"))


def _build(cls: type[T], given: Mapping[str, str | None], environ: Mapping[str, str]) -> T:
    values: dict[str, Any] = {}
    for f, tp in _fields(cls):
        if _is_settings_class(tp):
            values[f.name] = _build(tp, given, environ)
            continue
        env = f.metadata["env"]
        raw = given.get(env)
        if raw is None:
            raw = environ.get(env)
        if raw is None:
            if f.default is dataclasses.MISSING:
                raise ConfigError(f"{env} is required: {f.metadata['help']}")
            values[f.name] = f.default
            continue
        value = _convert(raw, tp, env)
        check = f.metadata["check"]
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{env}={raw!r} {problem}")
        values[f.name] = value
    return cls(**values)


def parser_for(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser whose options are ``cls``'s settings (for composing subcommands)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description,
        epilog="Every option can also be set by the environment variable named in its help; "
               "the command line wins.")
    _add_arguments(parser, cls, set())
    return parser


def load(
    cls: type[T],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    description: str,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Parse ``argv`` (for ``--help`` and flags) and the environment into a frozen ``cls``.

    Exits with status 2 and one line ``<prog>: configuration error: <message>`` on a bad value.
    """
    parser = parser_for(cls, prog, description)
    namespace = parser.parse_args(argv)
    try:
        return from_values(cls, vars(namespace), environ)
    except ConfigError as e:
        print(f"{prog}: configuration error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def from_values(
    cls: type[T], given: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> T:
    """Build ``cls`` from explicit values by env name, then the environment, then defaults.

    Raises :class:`ConfigError`; used by :func:`load` and by tests and in-process callers.
    """
    given_text = {k: (None if v is None else str(v)) for k, v in (given or {}).items()}
    return _build(cls, given_text, os.environ if environ is None else environ)


def env_names(cls: type) -> list[str]:
    """Every environment variable ``cls`` reads (for the chart consistency checks and docs)."""
    names: list[str] = []
    for f, tp in _fields(cls):
        names.extend(env_names(tp) if _is_settings_class(tp) else [f.metadata["env"]])
    return names


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(env name, default, help) of every setting, for generating README tables."""
    rows: list[tuple[str, str, str]] = []
    for f, tp in _fields(cls):
        if _is_settings_class(tp):
            rows.extend(describe(tp))
        else:
            rows.append((f.metadata["env"], _show_default(f), f.metadata["help"]))
    return rows
