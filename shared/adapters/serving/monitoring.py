"""What a model deployed on a Vertex AI endpoint served, from Cloud Monitoring (MetricServiceClient
list_time_series, google-cloud-monitoring's official GAPIC client, imported lazily): a canary's watch.

Vertex reports online prediction on the monitored resource `aiplatform.googleapis.com/Endpoint` (labels
endpoint_id, location), per deployed model (metric label deployed_model_id)
(https://cloud.google.com/monitoring/api/metrics_gcp_a_b#gcp-aiplatform):
- prediction/online/response_count: responses, any code — the requests served;
- prediction/online/error_count: failed predictions;
- prediction/online/prediction_latencies: a distribution, in milliseconds.
Each is read as one point over the whole watch (ALIGN_DELTA, alignment period = the window) summed across
replicas; the latency's p95 comes from the merged distribution (REDUCE_PERCENTILE_95). Points land a few
minutes late, which a watch of minutes tolerates.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Optional

from shared.adapters.lazy_client import GapicAdapter, gapic_client
from shared.domain.canary import Observation
from shared.errors import TransientError

METRIC = "aiplatform.googleapis.com/prediction/online/"
RESPONSES, ERRORS, LATENCIES = METRIC + "response_count", METRIC + "error_count", METRIC + "prediction_latencies"
RESOURCE = "aiplatform.googleapis.com/Endpoint"


def series_filter(metric: str, endpoint_id: str, deployed_model_id: str) -> str:
    return (f'metric.type = "{metric}" AND resource.type = "{RESOURCE}" AND resource.labels.endpoint_id = '
            f'"{endpoint_id}" AND metric.labels.deployed_model_id = "{deployed_model_id}"')


class CloudMonitoringMetrics(GapicAdapter):
    def __init__(self, project: str, client=None, emulator_host: str = ""):
        super().__init__(client, emulator_host)
        self.project = project

    def _make_client(self):
        from google.cloud import monitoring_v3

        return gapic_client(monitoring_v3.MetricServiceClient, self.emulator_host)

    def read(self, endpoint_resource_name: str, deployed_model_id: str, since: datetime,
             until: datetime) -> Observation:
        endpoint_id = endpoint_resource_name.rsplit("/", 1)[-1]
        requests = self._total(RESPONSES, endpoint_id, deployed_model_id, since, until)
        errors = self._total(ERRORS, endpoint_id, deployed_model_id, since, until)
        p95 = self._points(LATENCIES, endpoint_id, deployed_model_id, since, until, "REDUCE_PERCENTILE_95")
        return Observation(requests=int(requests), errors=int(errors),
                           p95_latency_ms=max(p95) if p95 else None)

    def _total(self, metric, endpoint_id, deployed_model_id, since, until) -> float:
        return sum(self._points(metric, endpoint_id, deployed_model_id, since, until, "REDUCE_SUM"))

    def _points(self, metric: str, endpoint_id: str, deployed_model_id: str, since: datetime, until: datetime,
                reducer: str) -> list[float]:
        from google.api_core import exceptions
        from google.cloud import monitoring_v3

        seconds = max(60, math.ceil((until - since).total_seconds()))  # the whole watch as one aligned point
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}", filter=series_filter(metric, endpoint_id, deployed_model_id),
            interval=monitoring_v3.TimeInterval(start_time=since, end_time=until),
            aggregation=monitoring_v3.Aggregation(
                alignment_period={"seconds": seconds},
                per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_DELTA,
                cross_series_reducer=getattr(monitoring_v3.Aggregation.Reducer, reducer),
                group_by_fields=["metric.labels.deployed_model_id"]),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL)
        try:
            return [_number(point.value) for series in self.client.list_time_series(request=request)
                    for point in series.points if _number(point.value) is not None]
        except exceptions.GoogleAPICallError as exc:  # the next check reads again
            raise TransientError(f"reading {metric} from Cloud Monitoring failed: {exc}") from exc


def _number(value) -> Optional[float]:
    kind = value._pb.WhichOneof("value")
    return None if kind in (None, "distribution_value", "string_value", "bool_value") else float(getattr(value, kind))
