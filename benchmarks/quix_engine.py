"""The engine's peer: the same tracking and policy logic on Quix Streams, exactly-once.

Run by :mod:`benchmarks.engine` with the interpreter of a private venv holding
``quixstreams==3.28.1`` (it pins ``confluent-kafka<2.13``, older than the product's, so it
cannot share the workspace venv), with the workspace's ``airline_core`` and ``airline_engine``
sources on ``PYTHONPATH``. Not part of the product: nothing imports it.

What it shares with ``airline-engine``: the input topics, the decoding
(:func:`airline_core.events.decode`), one :class:`~airline_engine.core.EngineCore` per input
partition (tracking, metrics, the policy), the encoded outputs, and exactly-once (Quix's
``processing_guarantee="exactly-once"``: outputs, its state changelog and the input offsets in
one Kafka transaction per commit, every second). What differs: Quix keeps each changed flight's
state in its RocksDB store (changelogged by Quix) where ours writes the state changelog itself;
no event-time merge of the four inputs (Quix processes each fetch in arrival order); no dead
letters (the benchmark input has no bad records); no restore from the changelog at start.

Prints one JSON line: ``{"events": N, "seconds": S, "outputs": M}``, timed from the first
record processed to the app's stop (its final commit included) less the idle time it waits
for more input before stopping, as ``airline-engine --stop-when-idle`` is timed.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from airline_core import events as ev
from airline_core.config import from_values
from airline_engine.core import EngineCore, core_config
from airline_engine.settings import Settings
from airline_engine.state import encode_record
from quixstreams import Application
from quixstreams.context import message_context
from quixstreams.models.serializers import Serializer

INPUTS = ("flight_lifecycle", "bookings", "seat_map", "seat_inventory")
OUTPUTS = ("inventory_metrics", "promo_decisions", "dead_letter")


class _Encoded(Serializer):
    """Values reach the sink as (topic, key, encoded bytes): write the bytes."""

    def __call__(self, value: Any, ctx: Any) -> bytes:
        return value[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--idle", type=float, default=1.0,
                   help="stop after this many seconds without input (default 1)")
    args = p.parse_args()
    config = core_config(from_values(Settings, {}, environ={}))
    app = Application(broker_address=args.bootstrap, consumer_group=args.group,
                      auto_offset_reset="earliest", processing_guarantee="exactly-once",
                      commit_interval=1.0, state_dir=args.state_dir, loglevel="WARNING")
    outputs = {name: app.topic(args.prefix + name, key_serializer="bytes",
                               value_serializer=_Encoded()) for name in OUTPUTS}
    frames = [app.dataframe(app.topic(args.prefix + name, key_deserializer="bytes",
                                      value_deserializer="bytes")) for name in INPUTS]
    sdf = frames[0]
    for other in frames[1:]:
        sdf = sdf.concat(other)
    cores: dict[int, EngineCore] = {}
    first: list[float] = []
    produced = [0]
    consumed = [0]

    def process(value: bytes, key: Any, timestamp: int, headers: Any, state: Any
                ) -> list[tuple[str, bytes | None, bytes]]:
        if not first:
            first.append(time.monotonic())
        consumed[0] += 1
        ctx = message_context()
        topic = ctx.topic[len(args.prefix):]
        core = cores.get(ctx.partition)
        if core is None:
            core = cores[ctx.partition] = EngineCore(config)
        out = core.apply(topic, ev.decode(topic, value))
        for flight_id in core.take_dirty():
            flight = core.flights.get(flight_id)
            if flight is not None:
                state.set(flight_id, encode_record(flight, {}).decode())
        produced[0] += len(out)
        return [(str(o.topic), o.event.key, ev.encode(o.event)) for o in out]

    sdf = sdf.apply(process, stateful=True, expand=True, metadata=True)
    sdf.to_topic(lambda value, key, ts, headers: outputs[value[0]], key=lambda v: v[1])
    app.run(timeout=args.idle)
    seconds = time.monotonic() - first[0] - args.idle if first else 0.0
    print(json.dumps({"events": consumed[0], "seconds": seconds, "outputs": produced[0]}))


if __name__ == "__main__":
    main()
