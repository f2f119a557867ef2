"""The writer: upserts mapped records into PostgreSQL with an exactly-once effect."""
