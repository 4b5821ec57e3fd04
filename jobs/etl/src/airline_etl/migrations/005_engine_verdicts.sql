-- 005: the engine's verdicts, so that the ETL rejects exactly the records the engine
-- dead-lettered, and the Kafka positions of the input lines loaded, so that a verdict arriving
-- after its line was loaded retracts that line's rows.
--
-- A position is (source generation, topic, partition, offset): offsets restart when the lake
-- moves to a new broker, and the lake writer then writes a new generation (roll names +gN).
-- A verdict's generation is that of the lake roll of dead_letter holding its envelope.
--
-- Lines loaded before this migration have no recorded position: a later verdict does not
-- retract them. Run the ETL once with --full after upgrading to judge every line.

CREATE TABLE etl_engine_verdicts (
    generation            integer NOT NULL,
    source_topic          text NOT NULL,
    source_partition      integer NOT NULL,
    source_offset         bigint NOT NULL,
    reason_code           text NOT NULL,
    reason                text NOT NULL,
    dead_letter_event_id  text NOT NULL,   -- the envelope (dead_letters.event_id)
    run_id                text NOT NULL,   -- the run that first read it
    PRIMARY KEY (generation, source_topic, source_partition, source_offset)
);

-- One row per accepted line of an engine input topic that has a Kafka position: which event
-- it carries. Every occurrence of an event is here (a replayed record is a second one).
CREATE TABLE etl_input_positions (
    generation       integer NOT NULL,
    topic            text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    event_id         text NOT NULL,
    PRIMARY KEY (generation, topic, kafka_partition, kafka_offset)
);
CREATE INDEX etl_input_positions_event ON etl_input_positions (event_id);
