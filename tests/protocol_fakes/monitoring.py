"""Cloud Monitoring's MetricService, as far as Trainyard calls it (ListTimeSeries), over its real gRPC
protocol (tests/protocol_fakes/grpc_service.py), with the official monitoring_v3 types.

Tests `add` points — (metric type, endpoint id, deployed model id, at, value) — as Vertex would report a
deployed model's online predictions; ListTimeSeries answers the series whose filter clauses all match,
over the request's interval, aligned as asked (ALIGN_DELTA over one period: the points' sum, or for a
distribution metric the merged values) and reduced across series (REDUCE_SUM, REDUCE_PERCENTILE_95).
What it enforces, answering INVALID_ARGUMENT as Monitoring does: a `projects/…` name, a filter naming
`metric.type`, an interval with an end time, and an alignment period of at least 60 s.
(https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/list)
"""
from __future__ import annotations

import math
import re
import threading
from datetime import datetime

import grpc
from google.cloud import monitoring_v3

CLAUSE = re.compile(r'([\w.]+)\s*=\s*"([^"]*)"')


class MetricServiceFake:
    def __init__(self):
        self.points: list[tuple[str, str, str, datetime, float]] = []
        self.requests: list[monitoring_v3.ListTimeSeriesRequest] = []
        self.lock = threading.Lock()

    def add(self, metric: str, endpoint_id: str, deployed_model_id: str, at: datetime, value: float) -> None:
        with self.lock:
            self.points.append((metric, endpoint_id, deployed_model_id, at, value))

    def list_time_series(self, request: monitoring_v3.ListTimeSeriesRequest, context):
        self.requests.append(request)
        if not request.name.startswith("projects/"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"name {request.name!r} is not projects/[PROJECT_ID]")
        clauses = dict(CLAUSE.findall(request.filter))
        if "metric.type" not in clauses:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the filter must name exactly one metric.type")
        if not request.interval.end_time:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "interval.end_time is required")
        aggregation = request.aggregation
        if aggregation.alignment_period and aggregation.alignment_period.total_seconds() < 60:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the alignment period must be at least 60 seconds")
        start, end = request.interval.start_time, request.interval.end_time
        with self.lock:
            values = [v for metric, endpoint, model, at, v in self.points
                      if metric == clauses["metric.type"]
                      and clauses.get("resource.labels.endpoint_id", endpoint) == endpoint
                      and clauses.get("metric.labels.deployed_model_id", model) == model and start <= at < end]
        if not values:
            return monitoring_v3.ListTimeSeriesResponse()
        reducer = monitoring_v3.Aggregation.Reducer(aggregation.cross_series_reducer)
        if reducer == monitoring_v3.Aggregation.Reducer.REDUCE_PERCENTILE_95:
            ordered = sorted(values)
            value = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
        else:
            value = float(sum(values))
        point = monitoring_v3.Point(interval=monitoring_v3.TimeInterval(start_time=start, end_time=end),
                                    value=monitoring_v3.TypedValue(double_value=value))
        series = monitoring_v3.TimeSeries(metric={"type": clauses["metric.type"]}, points=[point])
        return monitoring_v3.ListTimeSeriesResponse(time_series=[series])


def start() -> tuple[object, MetricServiceFake]:
    from google.cloud.monitoring_v3.services.metric_service.transports.grpc import MetricServiceGrpcTransport

    from tests.protocol_fakes.grpc_service import FakeServer

    fake = MetricServiceFake()
    return FakeServer().add(MetricServiceGrpcTransport, fake).start(), fake
