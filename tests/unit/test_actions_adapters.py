"""The cloud adapters of run actions and run data, against recorded API shapes (no network):
traffic splits, the Cloud Quotas / Monitoring GPU pre-flight (the logs readers: tests/unit/test_stage_logs.py)."""
from __future__ import annotations

import pytest

from shared.adapters.run_data_sources import CloudGpuQuota, quota_metric
from shared.adapters.serving import endpoint_id_for, split_traffic
from tests.fakes import RecordedRest as FakeRest


def test_split_traffic_keeps_the_rest_in_proportion_and_sums_to_100():
    assert split_traffic({}, "new", 100) == {"new": 100}
    assert split_traffic({"a": 100}, "new", 30) == {"new": 30, "a": 70}
    split = split_traffic({"a": 50, "b": 25, "c": 25}, "new", 33)
    assert split["new"] == 33 and sum(split.values()) == 100 and split["a"] > split["b"]
    assert split_traffic({"a": 100}, "new", 100) == {"new": 100, "a": 0}


def test_endpoint_ids_are_what_vertex_accepts():
    assert endpoint_id_for("tr-0123abcd") == "tr-0123abcd"
    assert endpoint_id_for("Product_Recommender-v3-r1") == "product-recommender-v3-r1"
    assert endpoint_id_for("9lives")[0].isalpha()


L4_INFO = {"quotaId": "CustomModelTrainingNvidiaL4GpusPerProjectPerRegion",
           "metric": "aiplatform.googleapis.com/custom_model_training_preemptible_nvidia_l4_gpus",
           "dimensionsInfos": [{"dimensions": {"region": "europe-west4"}, "details": {"value": "4"},
                                "applicableLocations": ["europe-west4"]},
                               {"dimensions": {}, "details": {"value": "0"}}]}


def test_gpu_quota_covers_or_warns():
    usage = {"timeSeries": [{"points": [{"value": {"int64Value": "2"}}, {"value": {"int64Value": "0"}}]}]}
    rest = FakeRest([("cloudquotas", {"quotaInfos": [L4_INFO]}), ("monitoring", usage)])
    quota = CloudGpuQuota("p", rest)
    ok = quota.check("europe-west4", "NVIDIA_L4", 2, True)
    assert ok["limit"] == 4 and ok["in_use"] == 2 and ok["available"] == 2 and ok["sufficient"] is True
    short = quota.check("europe-west4", "NVIDIA_L4", 4, True)
    assert short["sufficient"] is False and "request more quota" in short["message"]
    elsewhere = quota.check("us-central1", "NVIDIA_L4", 1, True)
    assert elsewhere["limit"] == 0 and elsewhere["sufficient"] is False
    missing = quota.check("europe-west4", "NVIDIA_TESLA_T4", 1, False)
    assert missing["sufficient"] is False and "no aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus" in missing["message"]
    assert sum("cloudquotas" in c[1] for c in rest.calls) == 1  # quota infos cached


def test_gpu_quota_unreadable_is_unknown_not_a_failure():
    rest = FakeRest([("cloudquotas", PermissionError("HTTP 403 permission denied"))])
    result = CloudGpuQuota("p", rest).check("europe-west4", "NVIDIA_L4", 2, False)
    assert result["sufficient"] is None and "could not read" in result["message"]
    assert quota_metric("NVIDIA_TESLA_A100", False) == "aiplatform.googleapis.com/custom_model_training_nvidia_a100_gpus"


