"""The core stream runtime with stand-ins for librdkafka: the loop's classification and order,
fatal errors, bounded transactional calls, lag from statistics, exit codes."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from airline_core.errors import AirlineError, ConfigError, RefusedToStartError
from airline_core.lifecycle import StopSignal
from airline_core.runtime.broker import BrokerWatch
from airline_core.runtime.checkpoint import TransactionStuckError, bounded
from airline_core.runtime.loop import ConsumeLoop
from airline_core.runtime.service import exit_code_of
from airline_core.runtime.stats import partition_lags
from confluent_kafka import KafkaError, KafkaException


class Msg:
    def __init__(self, partition: int, offset: int, error: KafkaError | None = None) -> None:
        self._p, self._o, self._e = partition, offset, error

    def error(self) -> KafkaError | None:
        return self._e

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class Batches:
    """A consumer that hands out the given batches (each one as what is queued at a turn),
    then nothing; ``waited`` adds up the time librdkafka would block: ``poll`` waits only
    when nothing is queued, ``consume(n, t)`` waits all of ``t`` unless ``n`` are queued."""

    def __init__(self, *batches: list[Msg]) -> None:
        self.batches = list(batches)
        self.waited = 0.0

    def poll(self, timeout: float) -> Msg | None:
        if not self.batches or not self.batches[0]:
            if self.batches:
                self.batches.pop(0)
            self.waited += timeout
            return None
        return self.batches[0].pop(0)

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        queued = self.batches.pop(0) if self.batches else []
        if len(queued) < num_messages:
            self.waited += timeout
        return queued[:num_messages]

    def list_topics(self, timeout: float) -> None:
        return None


class Recorder:
    """A processor that records what the loop told it, in order."""

    def __init__(self, consumer: Any, caught_up: bool = False) -> None:
        self.consumer = consumer
        self.seen: list[Any] = []
        self._caught_up = caught_up

    def on_records(self, records: list[Any], now: float) -> None:
        self.seen.append(("records", [m.offset() for m in records]))

    def on_end(self, topic: str, partition: int, offset: int) -> None:
        self.seen.append(("end", partition, offset))

    def on_fatal(self, error: KafkaError) -> None:
        self.seen.append(("fatal", error.code()))

    def after_batch(self, now: float, drained: bool = True) -> None:
        self.seen.append("after")

    def caught_up(self) -> bool:
        return self._caught_up

    def progress(self) -> dict[str, Any]:
        return {"x": 1}


EOF = KafkaError(KafkaError._PARTITION_EOF)


def _loop(processor: Recorder, idle: float = 0.0) -> ConsumeLoop:
    return ConsumeLoop(processor, StopSignal(), batch_size=10, poll_timeout_s=0.0,
                       idle_seconds=idle, broker=BrokerWatch())


def test_records_and_ends_reach_the_processor_in_fetch_order() -> None:
    """An end of partition after records must come after them: the merge would otherwise see
    the end first and wait for ever on an input it thinks is still moving."""
    processor = Recorder(Batches([Msg(0, 1), Msg(0, 2), Msg(0, 3, EOF), Msg(1, 7)]))
    _loop(processor).turn()
    assert processor.seen == [("records", [1, 2]), ("end", 0, 3), ("records", [7]), "after"]


def test_a_turn_takes_what_is_queued_without_waiting_for_a_full_batch() -> None:
    """At a live rate fewer records than a batch are queued at every turn: waiting out the
    poll timeout for a full batch would add that timeout to every record's latency."""
    consumer = Batches([Msg(0, 1), Msg(0, 2), Msg(0, 3)])
    processor = Recorder(consumer)
    ConsumeLoop(processor, StopSignal(), batch_size=10, poll_timeout_s=0.1, idle_seconds=0,
                broker=BrokerWatch()).turn()
    assert processor.seen == [("records", [1, 2, 3]), "after"]
    assert consumer.waited == 0.0


def test_a_fatal_error_drops_the_rest_of_the_batch() -> None:
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    processor = Recorder(Batches([Msg(0, 1), Msg(0, 2, fatal), Msg(0, 3)]))
    _loop(processor).turn()
    assert processor.seen == [("fatal", KafkaError._FATAL)]


def test_a_consume_exception_that_is_fatal_goes_to_the_processor() -> None:
    class Failing(Batches):
        def poll(self, timeout: float) -> Msg | None:
            raise KafkaException(KafkaError(KafkaError._FATAL, "gone", fatal=True))

    processor = Recorder(Failing())
    _loop(processor).turn()
    assert processor.seen == [("fatal", KafkaError._FATAL)]


def test_stops_when_caught_up_and_idle_only_if_asked() -> None:
    stop_asked = Recorder(Batches(), caught_up=True)
    loop = _loop(stop_asked, idle=0.0001)
    loop.run()  # returns: caught up and idle
    forever = Recorder(Batches(), caught_up=True)
    loop = _loop(forever)
    for _ in range(5):
        loop.turn()
    assert not loop._stop.requested


def test_broker_watch_follows_errors_records_and_probes() -> None:
    watch = BrokerWatch(probe_every_s=0.0)
    watch.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert watch.down
    watch.probe(Batches())
    assert not watch.down
    watch.on_error(KafkaError(KafkaError._TRANSPORT))
    watch.seen()
    assert not watch.down


def test_bounded_calls_return_raise_or_are_abandoned() -> None:
    bounded("ok", lambda: None, limit=1)
    with pytest.raises(ValueError, match="boom"):
        bounded("raises", lambda: (_ for _ in ()).throw(ValueError("boom")), limit=1)
    release = threading.Event()

    def blocked() -> None:
        release.wait(5)

    with pytest.raises(TransactionStuckError, match="blocked did not return"):
        bounded("blocked", blocked, limit=0.05)
    release.set()


def test_lag_is_last_stable_offset_minus_position() -> None:
    stats = {"topics": {"p-bookings": {"partitions": {
        "0": {"ls_offset": 120, "app_offset": 100, "consumer_lag": 999},
        "1": {"ls_offset": 5, "app_offset": 9}, "-1": {"ls_offset": 1, "app_offset": 0},
        "2": {"ls_offset": -1, "app_offset": 3}}}}}
    assert list(partition_lags(json.dumps(stats))) == [("p-bookings", 0, 20),
                                                       ("p-bookings", 1, 0)]
    assert list(partition_lags("not json")) == []


def test_exit_codes_come_from_the_error_classes() -> None:
    assert exit_code_of(AirlineError("x")) == 1
    assert exit_code_of(ConfigError("x")) == 2
    assert exit_code_of(RefusedToStartError("x")) == 3
    assert exit_code_of(KafkaException(KafkaError(KafkaError._TRANSPORT))) == 1
    with pytest.raises(ZeroDivisionError):
        exit_code_of(ZeroDivisionError())
