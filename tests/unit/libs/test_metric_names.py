"""The alert rules and the dashboard name only series the code defines (libs metrics.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase
from rostersync_libs import metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
# Names in PromQL that are not rostersync's: Prometheus' own series.
PROMETHEUS_SERIES = {"up"}
NAME = re.compile(
    r"(?<![\w:\"'{])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[)]|$|\s*[<>=!*/+-]|\s+(?:and|or|unless)\b)"
)


def defined_series() -> set[str]:
    """Every series name the services export: counters as ``_total``, histograms' three."""
    names: set[str] = set()
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        for family in collector.describe():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
            else:
                names.add(family.name)
    return names


def series_in(expr: str) -> set[str]:
    """The series an expression selects: names followed by a selector, a range or an operator,
    that are not functions, keywords or label names (those sit inside braces or ``by (...)``)."""
    without_labels = re.sub(r"\{[^}]*\}", "{}", expr)  # matchers name labels, not series
    without_groupings = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_labels
    )
    return set(re.findall(r"\b(rostersync_[a-zA-Z0-9_]+|up)\b", without_groupings))


def rule_expressions() -> list[str]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "rostersync.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_every_series_of_the_rules_is_defined() -> None:
    exprs = rule_expressions()
    used = set().union(*(series_in(e) for e in exprs))
    assert len(exprs) >= 5
    assert used - defined_series() - PROMETHEUS_SERIES == set()
    # The alerts the operations doc promises are there.
    assert {"rostersync_runs_ended_total", "rostersync_runs_held",
            "rostersync_last_successful_sync_timestamp_seconds",
            "rostersync_consumer_lag_messages", "rostersync_service_ready"} <= used  # fmt: skip


def test_every_series_of_the_dashboard_is_defined_and_every_metric_is_shown() -> None:
    used = set().union(*(series_in(e) for e in dashboard_expressions()))
    assert used - defined_series() == set()
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in defined_series()}
    assert families - shown == set()  # a metric nobody can see is one nobody maintains


def test_the_name_finder_sees_through_labels_and_groupings() -> None:
    expr = 'sum by (rostersync_x) (rate(rostersync_records_in_total{tenant="rostersync_y"}[5m]))'
    assert series_in(expr) == {"rostersync_records_in_total"}
    assert "rostersync_nothing_total" not in defined_series()
    assert "rostersync_batch_seconds_bucket" in defined_series()
