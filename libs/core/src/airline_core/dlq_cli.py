"""``airline-dlq``: look into the dead_letter topic and replay what a fix made acceptable.

list     one line per dead letter, then counts by reason and by source topic
show     one dead letter decoded, and what the contract says of its original now
replay   re-produce originals to their source topic and partition (idempotent, all-or-nothing)

The topic is read whole, to its current end, without joining any consumer group: looking never
moves any component's progress. See docs/runbook.md for when to replay and what follows.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Final

from confluent_kafka import KafkaException

from airline_core import config
from airline_core import dlq as dl
from airline_core import events as ev
from airline_core.config import KafkaSettings, LogSettings, group, positive, setting
from airline_core.contract import Reason, Rejection, read_record
from airline_core.errors import AirlineError, ConfigError
from airline_core.logging import configure_logging, get_logger
from airline_core.topics import Topic

log = get_logger(__name__)
PROG: Final = "airline-dlq"
EPILOG: Final = ("Every option named with an environment variable can also be set by it; the "
                 "command line wins. Exit codes: 0 done, 1 Kafka error or unknown id, "
                 "2 bad arguments or settings.")


def _not_blank(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


@dataclasses.dataclass(frozen=True)
class DlqSettings:
    """Settings of ``airline-dlq``."""

    kafka: KafkaSettings = group(KafkaSettings)
    log: LogSettings = group(LogSettings)
    timeout_seconds: float = setting(
        "DLQ_TIMEOUT_SECONDS", 30.0, "longest wait on the broker for each step: metadata, "
        "reading topics to their end (an open transaction holds a read_committed reader back), "
        "a replay's transaction", check=positive)
    transactional_id: str = setting(
        "DLQ_TRANSACTIONAL_ID", "airline-dlq", "transactional.id of replays, after "
        "KAFKA_TOPIC_PREFIX (a replay started under the same id fences one still running)",
        check=_not_blank)


class UsageError(AirlineError):
    """Arguments that parse but make no sense together (exit 2)."""

    exit_code: ClassVar[int] = 2


# --------------------------------------------------------------------------- arguments
def parse_time(text: str) -> datetime:
    """``--since``/``--until``: a date (midnight UTC) or an ISO-8601 time with its zone.

    A time without a zone is refused, as the contract refuses naive times: its zone would be
    a guess, and dead letters are dated in UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2025-11-28) or an ISO-8601 time "
            "(2025-11-28T10:00:00Z)") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z (UTC) or an "
                                         "offset such as +01:00")
    return when.astimezone(UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number greater than 0")
    return value


def _add_selection(parser: argparse.ArgumentParser, *, ids: bool) -> None:
    if ids:
        parser.add_argument("--id", dest="ids", action="append", default=[], metavar="ID",
                            help="a dead letter's event_id (or a unique prefix); repeatable")
    parser.add_argument("--reason", dest="reasons", action="append", default=[],
                        choices=[str(r) for r in Reason], metavar="CODE",
                        help="reason code (docs/contract.md), e.g. not_json; repeatable")
    parser.add_argument("--topic", dest="topics", action="append", default=[],
                        choices=[str(t) for t in Topic], metavar="TOPIC",
                        help="source topic (logical name, e.g. bookings); repeatable")
    parser.add_argument("--component", dest="components", action="append", default=[],
                        metavar="NAME", help="rejecting component (airline-engine, "
                        "lake-writer); repeatable")
    parser.add_argument("--since", type=parse_time, metavar="TIME",
                        help="event_time at or after (a date is midnight UTC; a time needs Z "
                             "or an offset)")
    parser.add_argument("--until", type=parse_time, metavar="TIME",
                        help="event_time before (exclusive)")


def build_parser() -> argparse.ArgumentParser:
    """The command line: subcommands, each with the shared settings and its own options."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Each command has --help with the connection "
                                            "settings. " + EPILOG)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        settings = config.parser_for(DlqSettings, f"{PROG} {name}", description)
        return commands.add_parser(name, help=summary, description=description, epilog=EPILOG,
                                   parents=[settings], add_help=False)

    listing = command("list", "one line per dead letter, and counts",
                      "One line per selected dead letter (time, reason code, source "
                      "topic[partition]@offset, component, flight, id) in event-time order, "
                      "then counts by reason and by source topic. Criteria combine with AND.")
    _add_selection(listing, ids=False)
    listing.add_argument("--limit", type=_positive_int, metavar="N",
                         help="print the first N lines only (the counts cover every match)")
    listing.add_argument("--json", action="store_true",
                         help="JSON lines: each envelope as on the topic, then one "
                              '{"summary": ...} line')

    show = command("show", "one dead letter decoded",
                   "Every field of one dead letter, its original key, value and headers (as "
                   "UTF-8 text when they decode, else base64) and what the contract says of "
                   "the original now.")
    show.add_argument("id", metavar="ID", help="the dead letter's event_id (or a unique prefix)")

    again = command("replay", "re-produce originals to their source partition",
                    "Re-produce each selected dead letter's original key, value and headers to "
                    "its source topic and partition, with header airline-replay-of = the dead "
                    "letter's id, in one transaction. Records replayed before (by any run) are "
                    "skipped, so replaying twice writes nothing the second time; truncated "
                    "originals are never replayed. Criteria combine with AND.")
    _add_selection(again, ids=True)
    again.add_argument("--all", action="store_true",
                       help="replay every dead letter (needed when no criterion is given)")
    again.add_argument("--dry-run", action="store_true",
                       help="print what would be replayed; write nothing")
    return parser


def selection_of(args: dict[str, Any], catalogue: dl.Catalogue | None = None) -> dl.Selection:
    """The :class:`~airline_core.dlq.Selection` the options describe (ids resolved against the
    catalogue, so a prefix works)."""
    ids = args.get("ids") or []
    return dl.Selection(
        ids=catalogue.resolve(ids) if catalogue is not None and ids else frozenset(ids),
        reasons=frozenset(args.get("reasons") or ()),
        topics=frozenset(args.get("topics") or ()),
        components=frozenset(args.get("components") or ()),
        since=args.get("since"), until=args.get("until"))


# --------------------------------------------------------------------------- rendering
def format_time(when: datetime) -> str:
    """UTC, ISO-8601 with ``Z``, as the contract writes times."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


HEADER: Final = (f"{'time':<20}  {'reason':<21}  {'source':<26}  {'component':<14}  "
                 f"{'flight':<18}  id")


def line_of(envelope: ev.DeadLetter) -> str:
    """One ``list`` line: time, reason code, source, component, flight, id."""
    return (f"{format_time(envelope.event_time):<20}  {dl.reason_code(envelope) or '-':<21}  "
            f"{dl.source_text(envelope):<26}  {envelope.component:<14}  "
            f"{envelope.flight_id:<18}  {envelope.event_id}")


def summary_lines(summary: dl.Summary, catalogue: dl.Catalogue, shown: int) -> list[str]:
    """The counts after the lines."""
    head = f"{summary.total} dead letter{'' if summary.total == 1 else 's'}"
    if shown < summary.total:
        head += f" ({shown} shown)"
    extras = [f"{catalogue.records} records on the topic"]
    if catalogue.duplicates:
        extras.append(f"{catalogue.duplicates} duplicate{'s' * (catalogue.duplicates > 1)}")
    if catalogue.unreadable:
        extras.append(f"{catalogue.unreadable} not a dead letter")
    lines = [f"{head}; {', '.join(extras)}"]
    for title, counts in (("by reason", summary.by_reason), ("by topic", summary.by_topic)):
        if counts:
            lines.append(f"{title}:")
            lines += [f"  {name:<24}{count:>8}" for name, count in counts.items()]
    return lines


def summary_json(summary: dl.Summary, catalogue: dl.Catalogue) -> str:
    """The last ``list --json`` line."""
    return json.dumps({"summary": {
        "dead_letters": summary.total, "by_reason": summary.by_reason,
        "by_topic": summary.by_topic, "records": catalogue.records,
        "duplicates": catalogue.duplicates, "unreadable": catalogue.unreadable}})


_CONTROLS: Final = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def shown_bytes(data: bytes | None) -> tuple[str, str]:
    """(how, text): UTF-8 text when the bytes decode (control characters escaped, so a
    multi-line value stays on one line), else base64."""
    if data is None:
        return "none", ""
    try:
        return "text", data.decode("utf-8").translate(_CONTROLS)
    except UnicodeDecodeError:
        return "base64", base64.b64encode(data).decode("ascii")


def verdict(envelope: ev.DeadLetter) -> str:
    """What :func:`airline_core.contract.read_record` says of the original now."""
    if envelope.original_truncated:
        return ("not checked: the envelope kept only part of the original "
                f"({envelope.original_size} bytes); it cannot be replayed from the envelope")
    try:
        original = dl.original_of(envelope)
    except ValueError as e:
        return f"not checked: {e}"
    result = read_record(envelope.source_topic, original.key, original.value)
    if isinstance(result, Rejection):
        return f"rejected: {result.text}"
    return (f"accepted: {type(result).__name__} {result.event_id} (the engine's watermark and "
            "business rules depend on its state and are not checked here)")


def show_lines(envelope: ev.DeadLetter) -> list[str]:
    """``show``: every field, then the original decoded, then the contract's verdict."""
    fields: list[tuple[str, object]] = [
        ("event_id", envelope.event_id), ("event_type", "DeadLetter"),
        ("event_time", format_time(envelope.event_time)),
        ("schema_version", envelope.schema_version), ("flight_id", envelope.flight_id),
        ("source", dl.source_text(envelope)), ("component", envelope.component),
        ("reason_code", dl.reason_code(envelope) or "-"), ("reason", envelope.reason),
        ("original_size", envelope.original_size),
        ("original_sha256", envelope.original_sha256 or "-"),
        ("original_truncated", "yes" if envelope.original_truncated else "no"),
    ]
    lines = [f"{name:<20}{value}" for name, value in fields]
    try:
        original: dl.Original | None = dl.original_of(envelope)
    except ValueError as e:
        original = None
        lines.append(f"{'original':<20}{e}")
    if original is not None:
        for name, data in (("key", original.key), ("value", original.value)):
            how, text = shown_bytes(data)
            label = f"{name} ({how})"
            lines.append(f"{label:<20}{text}" if how != "none" else
                         f"{name:<20}(none{': a tombstone' if name == 'value' else ''})")
        if not original.headers:
            lines.append(f"{'headers':<20}(none)")
        for header, data in original.headers:
            how, text = shown_bytes(data)
            lines.append(f"{'header (' + how + ')':<20}{header} = {text}")
    lines.append(f"{'contract now':<20}{verdict(envelope)}")
    return lines


def replay_lines(result: dl.ReplayResult, selected: int) -> list[str]:
    """``replay``: a line per selected dead letter, then the counts."""
    verb = "would replay" if result.dry_run else "replayed"
    lines = []
    for record in result.plan.records:
        where = result.landed.get(record.envelope.event_id)
        target = str(where) if where else f"{record.target[0]}[{record.target[1]}]"
        lines.append(f"{verb:<13}{record.envelope.event_id}  "
                     f"{dl.source_text(record.envelope)} -> {target}")
    for skip in result.plan.skipped:
        lines.append(f"{'skipped':<13}{skip.envelope.event_id}  "
                     f"{dl.source_text(skip.envelope)}: {skip.detail}")
    counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in result.plan.counts().items())
    tail = f"{verb} {len(result.plan.records)} of {selected} selected dead letters"
    if counts:
        tail += f"; skipped {len(result.plan.skipped)} ({counts})"
    if result.dry_run:
        tail = "dry run: " + tail + "; nothing was written"
    lines.append(tail)
    return lines


# --------------------------------------------------------------------------- commands
def _client_extra(settings: DlqSettings) -> dict[str, Any]:
    """librdkafka logs every failed connection attempt itself; an operator gets one clear
    line from us instead (librdkafka's own at LOG_LEVEL=DEBUG)."""
    return {"log_level": 7 if settings.log.level == "DEBUG" else 2}


def _catalogue(settings: DlqSettings) -> dl.Catalogue:
    with dl.reader(settings.kafka, settings.timeout_seconds, _client_extra(settings)) as source:
        catalogue = dl.read_catalogue(source)
    log.info("dead letters read", records=catalogue.records, envelopes=len(catalogue.envelopes),
             duplicates=catalogue.duplicates, unreadable=catalogue.unreadable)
    return catalogue


def run_list(settings: DlqSettings, args: dict[str, Any]) -> int:
    """``list``."""
    catalogue = _catalogue(settings)
    selected = selection_of(args).apply(catalogue.envelopes)
    summary = dl.summarise(selected)
    shown = selected[:args["limit"]] if args.get("limit") else selected
    if args.get("json"):
        for envelope in shown:
            print(ev.encode(envelope).decode())
        print(summary_json(summary, catalogue))
        return 0
    print(HEADER)
    for envelope in shown:
        print(line_of(envelope))
    print()
    print("\n".join(summary_lines(summary, catalogue, len(shown))))
    return 0


def run_show(settings: DlqSettings, args: dict[str, Any]) -> int:
    """``show``."""
    catalogue = _catalogue(settings)
    (wanted,) = catalogue.resolve([args["id"]])
    print("\n".join(show_lines(catalogue.by_id()[wanted])))
    return 0


def run_replay(settings: DlqSettings, args: dict[str, Any]) -> int:
    """``replay``."""
    selection = selection_of(args)
    if selection.is_everything and not args.get("all"):
        raise UsageError("replay needs a selection (--id, --reason, --topic, --component, "
                         "--since, --until) or --all")
    catalogue = _catalogue(settings)
    selected = selection_of(args, catalogue).apply(catalogue.envelopes)
    result = dl.replay(settings.kafka, catalogue, selected,
                       transactional_id=settings.transactional_id,
                       timeout=settings.timeout_seconds, dry_run=bool(args.get("dry_run")),
                       extra=_client_extra(settings))
    print("\n".join(replay_lines(result, len(selected))))
    log.info("replay dry run" if result.dry_run else "replay committed",
             selected=len(selected), replayed=len(result.plan.records),
             skipped=result.plan.counts())
    return 0


COMMANDS: Final[dict[str, Callable[[DlqSettings, dict[str, Any]], int]]] = {
    "list": run_list, "show": run_show, "replay": run_replay}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-dlq``; returns the exit code (also for ``--help`` and bad
    arguments, so it runs in process)."""
    parser = build_parser()
    try:
        args = vars(parser.parse_args(argv))
    except SystemExit as e:  # --help (0) or a bad argument (2): argparse said why
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    command = args.pop("command")
    try:
        settings = config.from_values(DlqSettings, args)
    except ConfigError as e:
        print(f"{PROG}: configuration error: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log, component=PROG)
    try:
        return COMMANDS[command](settings, args)
    except UsageError as e:
        print(f"{PROG} {command}: {e}", file=sys.stderr)
        return 2
    except (AirlineError, KafkaException) as e:
        log.error(f"{command} failed", error=str(e))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
