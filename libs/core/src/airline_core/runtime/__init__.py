"""The stream runtime every long-running consumer is a thin composition of.

* :mod:`.loop`: the consume loop. It classifies what librdkafka hands over (record, end of
  partition, error, fatal error) and drives a :class:`~.loop.Processor`; it beats the health
  probe, applies ``--stop-when-idle`` and logs a progress line now and then.
* :mod:`.broker`: whether the broker is reachable (error callbacks, records, probes), for
  readiness and for not committing into an outage.
* :mod:`.stats`: consumer lag from librdkafka statistics, computed one way for everyone.
* :mod:`.checkpoint`: the two ways progress becomes durable: a Kafka transaction (outputs and
  input offsets together, every call bounded, abort, fence and rewind) or an external sink
  (the sink is durable first, then the offsets are committed).
* :mod:`.service`: one process lifecycle (logging, signals, health server, exit codes carried
  by error classes and mapped in one place).
"""
