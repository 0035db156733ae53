"""Where the API reads a run's logs (shared/adapters/run_logs.py) and the GPU quota from, chosen once from settings.

Cloud: the Cloud Quotas API for the Vertex training GPU quota and Cloud Monitoring for its current usage,
over their REST APIs with google-auth's AuthorizedSession. Local: no quota applies on one machine.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Optional, Protocol

from shared.adapters.rest_client import RestClient
from shared.adapters.run_logs import LogSource
from shared.errors import FieldError, NotFound, TransientError
from shared.validation import REGION

# Vertex custom-training quota metric per accelerator (Spot/preemptible VMs have their own quota).
GPU_QUOTA_NAMES = {"NVIDIA_TESLA_T4": "nvidia_t4", "NVIDIA_L4": "nvidia_l4", "NVIDIA_TESLA_V100": "nvidia_v100",
                   "NVIDIA_TESLA_A100": "nvidia_a100"}


def quota_metric(gpu_type: str, preemptible: bool) -> str:
    return (f"aiplatform.googleapis.com/custom_model_training_{'preemptible_' if preemptible else ''}"
            f"{GPU_QUOTA_NAMES[gpu_type]}_gpus")


class GpuQuota(Protocol):
    def check(self, region: str, gpu_type: str, gpu_count: int, preemptible: bool) -> dict: ...


# --------------------------------------------------------------------------- cloud


class CloudGpuQuota:
    """Spec §14.1 pre-flight: the project's Vertex custom-training quota for the accelerator in the
    region (Cloud Quotas API) against what is in use (Cloud Monitoring quota usage)."""

    CACHE_S = 300

    def __init__(self, project: str, rest: Optional[RestClient] = None, usage_cache_s: float = 60.0,
                 clock=time.monotonic):
        self.project = project
        self.rest = rest or RestClient()
        # Usage is read at most once per usage_cache_s per (metric, region): Monitoring samples quota usage
        # every 60 s and shows a point only after a delay
        # (https://cloud.google.com/monitoring/api/v3/latency-n-retention), so a fresher read adds little.
        self.usage_cache_s = usage_cache_s
        self.clock = clock
        self._cache: dict = {}

    def _fresh(self, key, max_age_s: float):
        cached = self._cache.get(key)
        return cached if cached and self.clock() - cached[0] < max_age_s else None

    def _quota_infos(self) -> list[dict]:
        cached = self._fresh("infos", self.CACHE_S)
        if cached:
            return cached[1]
        url = (f"https://cloudquotas.googleapis.com/v1/projects/{self.project}/locations/global/services/"
               f"aiplatform.googleapis.com/quotaInfos")
        infos, token = [], None
        while True:
            page = self.rest.call("GET", url, "Cloud Quotas", params={"pageSize": 1000, **({"pageToken": token} if token else {})})
            infos.extend(page.get("quotaInfos", []))
            token = page.get("nextPageToken")
            if not token:
                break
        self._cache["infos"] = (self.clock(), infos)
        return infos

    @staticmethod
    def limit_in(info: dict, region: str) -> Optional[int]:
        fallback = None
        for dims in info.get("dimensionsInfos", []):
            value = (dims.get("details") or {}).get("value")
            value = int(value) if value is not None else None
            if (dims.get("dimensions") or {}).get("region") == region or region in dims.get("applicableLocations", []):
                return value
            if not dims.get("dimensions"):
                fallback = value
        return fallback

    def _in_use(self, metric: str, region: str) -> Optional[int]:
        cached = self._fresh(("usage", metric, region), self.usage_cache_s)
        if cached:
            return cached[1]
        in_use = self._read_in_use(metric, region)  # an unreadable usage (None) is remembered as briefly
        self._cache[("usage", metric, region)] = (self.clock(), in_use)
        return in_use

    def _read_in_use(self, metric: str, region: str) -> Optional[int]:
        if not REGION.fullmatch(region):  # it goes inside the filter string below: nothing but a region may
            raise FieldError.one("region", "must be a Google Cloud region such as europe-west4")
        end = datetime.now(timezone.utc)
        query = (f'metric.type="serviceruntime.googleapis.com/quota/allocation/usage" AND resource.type="consumer_quota" '
                 f'AND resource.labels.service="aiplatform.googleapis.com" AND metric.labels.quota_metric="{metric}" '
                 f'AND resource.labels.location="{region}"')
        try:
            found = self.rest.call("GET", f"https://monitoring.googleapis.com/v3/projects/{self.project}/timeSeries",
                                   "Cloud Monitoring", params={
                                       "filter": query, "interval.endTime": end.isoformat().replace("+00:00", "Z"),
                                       "interval.startTime": (end - timedelta(days=1)).isoformat().replace("+00:00", "Z")})
        except (PermissionError, NotFound, TransientError):
            return None  # usage is a refinement; the limit alone still answers most questions
        latest = 0
        for series in found.get("timeSeries", []):
            points = series.get("points") or []
            if points:
                latest += int(points[0]["value"].get("int64Value", 0))  # newest point first
        return latest

    def check(self, region, gpu_type, gpu_count, preemptible):
        metric = quota_metric(gpu_type, preemptible)
        result = {"region": region, "gpu_type": gpu_type, "gpu_count": gpu_count, "preemptible": preemptible,
                  "quota_applies": True, "quota_metric": metric, "limit": None, "in_use": None, "available": None,
                  "sufficient": None,
                  "request_increase_url": f"https://console.cloud.google.com/iam-admin/quotas?project={self.project}"}
        try:
            info = next((i for i in self._quota_infos() if i.get("metric") == metric), None)
        except PermissionError as exc:
            return {**result, "message": f"could not read the quota ({exc}); the run may still be accepted"}
        if info is None:
            return {**result, "limit": 0, "available": 0, "sufficient": False,
                    "message": f"the project has no {metric} quota; request one before training on {gpu_type}"}
        limit = self.limit_in(info, region) or 0
        in_use = self._in_use(metric, region)
        available = limit - (in_use or 0)
        sufficient = available >= gpu_count
        kind = "Spot " if preemptible else ""
        message = (f"{available} of {limit} {kind}{gpu_type} GPUs free in {region}; the run needs {gpu_count}"
                   if in_use is not None else f"the {kind}{gpu_type} quota in {region} is {limit}; the run needs {gpu_count}")
        if not sufficient:
            message += f" — request more quota ({metric}) or choose another region or GPU"
        return {**result, "quota_id": info.get("quotaId"), "limit": limit, "in_use": in_use, "available": available,
                "sufficient": sufficient, "message": message}


# --------------------------------------------------------------------------- local


class LocalGpuQuota:
    def check(self, region, gpu_type, gpu_count, preemptible):
        return {"region": region, "gpu_type": gpu_type, "gpu_count": gpu_count, "preemptible": preemptible,
                "quota_applies": False, "quota_metric": quota_metric(gpu_type, preemptible), "limit": None,
                "in_use": None, "available": None, "sufficient": True,
                "message": "the local pipeline service trains on this machine; no Vertex quota applies"}


class RunDataSources:
    def __init__(self, logs: LogSource, gpu_quota: GpuQuota):
        self.logs = logs
        self.gpu_quota = gpu_quota
