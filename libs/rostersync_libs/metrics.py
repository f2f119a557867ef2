"""Every Prometheus series the services export: the one owner of their names and labels.

The alert rules (deploy/prometheus/alerts.yaml) and the dashboard (deploy/grafana/rostersync.json)
use exactly these names; tests/unit/libs/test_metric_names.py holds them to it.

Labels stay few: a service, a stage, a tenant (hundreds at most), a source id, a table, a topic
partition. Never a sourcedId, a run id or anything from a record: each label value is a series
Prometheus keeps. Counts are added per batch, never per record, so the hot paths pay a few dict
operations a batch (docs/benchmarks.md measures it).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "rostersync_"

# The stages' record flow. ``stage``: fetcher (published), validator, mapper, writer (applied).
RECORDS_IN = Counter(
    "rostersync_records_in_total", "Record events a stage received", ["stage", "tenant"]
)
RECORDS_OUT = Counter(
    "rostersync_records_out_total",
    "Record events a stage sent on (or applied)",
    ["stage", "tenant"],
)
RECORDS_REJECTED = Counter(
    "rostersync_records_rejected_total", "Records a stage rejected", ["stage", "tenant"]
)

# One consumer batch (getmany) of a service, from receipt to committed offsets.
BATCH_MESSAGES = Histogram(
    "rostersync_batch_messages",
    "Kafka messages in one batch a service handled",
    ["service"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000),
)
BATCH_SECONDS = Histogram(
    "rostersync_batch_seconds",
    "Seconds a service took to handle one batch, its commit included",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_LAG = Gauge(
    "rostersync_consumer_lag_messages",
    "Messages behind the partition's high watermark (highwater - position)",
    ["service", "topic", "partition"],
)

# Runs, as the writer completes them. ``outcome``: completed, held (removals wait for an
# operator), failed (the fetcher failed or was cancelled: nothing removed).
RUNS_ENDED = Counter(
    "rostersync_runs_ended_total", "Sync runs the writer completed", ["tenant", "source", "outcome"]
)
RUN_SECONDS = Histogram(
    "rostersync_run_duration_seconds",
    "Seconds from a run's request (its id's time) to its completion",
    ["tenant"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200),
)
LAST_SUCCESS = Gauge(
    "rostersync_last_successful_sync_timestamp_seconds",
    "When the last completed run of a source ended (Unix time)",
    ["tenant", "source"],
)
RUNS_HELD = Gauge(
    "rostersync_runs_held", "Runs whose removals wait for an operator's decision", ["tenant"]
)
ROWS_CHANGED = Counter(
    "rostersync_writer_rows_changed_total", "Rows the writer inserted or updated", ["table"]
)

# REST sources (the fetcher). ``status``: the HTTP status, or ``error`` (no answer).
REST_REQUESTS = Counter(
    "rostersync_rest_requests_total",
    "HTTP requests to OneRoster REST sources",
    ["tenant", "source", "status"],
)
REST_RETRIES = Counter(
    "rostersync_rest_retries_total", "REST requests retried after a failure", ["tenant", "source"]
)

SERVICE_READY = Gauge(
    "rostersync_service_ready", "1 when the service is ready (/readyz), else 0", ["service"]
)


def count_by_tenant(counter: Counter, stage: str, tenants: Iterable[str]) -> None:
    """Add one per tenant occurrence, with one ``inc`` per tenant (a batch has few)."""
    for tenant, n in Tally(tenants).items():
        counter.labels(stage, tenant).inc(n)


# The admin API (services/api): requests by route template (never a tenant or run id) and status.
API_REQUESTS = Counter(
    "rostersync_api_requests_total",
    "Admin API requests by method, route template and status",
    ["method", "route", "status"],
)
