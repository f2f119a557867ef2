-- Record topics v2 carry records in batches: a record a stage rejects is found at its batch's
-- position and its index inside the batch (0 for a whole message, as before).
ALTER TABLE rejected_records ADD COLUMN source_index int NOT NULL DEFAULT 0;
ALTER TABLE rejected_records
    DROP CONSTRAINT rejected_records_source_topic_source_partition_source_offse_key;
ALTER TABLE rejected_records ADD CONSTRAINT rejected_records_source_position
    UNIQUE (source_topic, source_partition, source_offset, source_index);
