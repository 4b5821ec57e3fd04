"""Restoring state from the compacted changelog reads every record of a partition, however many
batches that takes (a restore that stopped after one fetch batch once lost most flights)."""

from collections.abc import Callable

import pytest
from airline_core import config
from airline_core.config import KafkaSettings
from airline_engine.restore import ChangelogReader
from airline_engine.state import FlightState, encode_record
from airline_testkit.kafka import create_topic
from confluent_kafka import Producer

pytestmark = pytest.mark.kafka
FLIGHTS = 12_000  # more than two of the reader's 5,000-record batches
DROPPED = 500  # tombstones: flights whose state was deleted


def test_restore_reads_the_whole_partition(kafka_bootstrap: str,
                                           unique_name: Callable[[str], str]) -> None:
    topic = unique_name("changelog")
    kafka = config.from_values(KafkaSettings, {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
                               environ={})
    create_topic(kafka_bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    for n in range(FLIGHTS):
        value = encode_record(FlightState(flight_id=f"F{n}", booked=n), {"bookings": 10 * n})
        producer.produce(topic, key=f"F{n}".encode(), value=value, partition=1)
    for n in range(DROPPED):
        producer.produce(topic, key=f"F{n}".encode(), value=None, partition=1)
    assert producer.flush(60) == 0

    reader = ChangelogReader(kafka, topic, unique_name("restore"))
    try:
        restored = reader.restore([0, 1])
    finally:
        reader.close()
    assert restored[0].records == 0 and not restored[0].flights
    assert restored[1].records == FLIGHTS + DROPPED
    assert len(restored[1].flights) == FLIGHTS - DROPPED
    assert restored[1].flights[f"F{FLIGHTS - 1}"].booked == FLIGHTS - 1
    assert restored[1].offsets == {"bookings": 10 * (FLIGHTS - 1)}
