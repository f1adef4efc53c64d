"""Prometheus metrics, read from the task store at each scrape.

The store is the one place task state lives, so the metrics are computed from it rather
than counted in one process: they agree with the store whichever process ran the tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..tasks.model import STATES
from ..tasks.store import TaskStore

DURATION_BUCKETS_S = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class TaskStoreCollector:
    """Collects marketexport_* metrics from a task store."""

    def __init__(self, tasks: TaskStore) -> None:
        self.tasks = tasks

    def collect(self) -> Iterator[Metric]:
        by_state = {state: 0 for state in STATES}
        for state, count in self.tasks.read("SELECT state, count(*) FROM tasks GROUP BY state"):
            by_state[state] = int(count)
        tasks = GaugeMetricFamily("marketexport_tasks", "Tasks by state", labels=["state"])
        for state, count in by_state.items():
            tasks.add_metric([state], count)
        yield tasks
        yield GaugeMetricFamily(
            "marketexport_queue_length", "Tasks waiting to run", value=by_state["pending"]
        )

        totals = self.tasks.read(
            "SELECT coalesce(sum(rows_done), 0), coalesce(sum(bytes_written), 0) "
            "FROM tasks WHERE state = 'completed'"
        )[0]
        yield CounterMetricFamily(
            "marketexport_rows_exported", "Rows written by completed exports", value=totals[0]
        )
        yield CounterMetricFamily(
            "marketexport_bytes_exported", "Bytes written by completed exports", value=totals[1]
        )
        yield CounterMetricFamily(
            "marketexport_task_failures", "Tasks that ended failed", value=by_state["failed"]
        )
        retries = self.tasks.read(
            "SELECT coalesce(sum(attempts - 1), 0) FROM tasks WHERE attempts > 1"
        )[0][0]
        yield CounterMetricFamily(
            "marketexport_task_retries", "Attempts beyond each task's first", value=retries
        )
        yield self._durations()
        yield from self._schedule_lag()

    def _durations(self) -> HistogramMetricFamily:
        rows = self.tasks.read(
            "SELECT request, finished_at - started_at FROM tasks "
            "WHERE state = 'completed' AND started_at IS NOT NULL AND finished_at IS NOT NULL"
        )
        by_format: dict[str, list[float]] = {}
        for request_text, seconds in rows:
            fmt = str(_load(request_text).get("format", "unknown"))
            by_format.setdefault(fmt, []).append(float(seconds))
        family = HistogramMetricFamily(
            "marketexport_export_duration_seconds",
            "Run time of completed exports (last attempt) by format",
            labels=["format"],
        )
        for fmt, values in sorted(by_format.items()):
            buckets = [
                (str(bound), sum(1 for v in values if v <= bound)) for bound in DURATION_BUCKETS_S
            ]
            buckets.append(("+Inf", len(values)))
            family.add_metric([fmt], buckets, sum_value=sum(values))
        return family

    def _schedule_lag(self) -> Iterator[Metric]:
        """Seconds between each scheduled task's instant and its start (when schedules exist)."""
        rows = self.tasks.read(
            "SELECT schedule_id, max(started_at - scheduled_for_ns / 1e9) FROM tasks "
            "WHERE schedule_id IS NOT NULL AND started_at IS NOT NULL GROUP BY schedule_id"
        )
        lag = GaugeMetricFamily(
            "marketexport_schedule_lag_seconds",
            "Largest delay between a scheduled instant and the start of its task",
            labels=["schedule_id"],
        )
        for schedule_id, seconds in rows:
            lag.add_metric([str(schedule_id)], max(0.0, float(seconds)))
        yield lag


def _load(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def render_metrics(tasks: TaskStore) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(TaskStoreCollector(tasks))  # type: ignore[arg-type]
    return generate_latest(registry)
