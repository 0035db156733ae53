"""The cloud adapters of run actions and run data, against recorded API shapes (no network):
traffic splits, the Cloud Quotas / Monitoring GPU pre-flight, Cloud Logging paging, local log paging."""
from __future__ import annotations

import pytest

from shared.adapters.run_data_sources import CloudGpuQuota, CloudLoggingLogs, LocalPipelineLogs, quota_metric
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


def test_cloud_logs_read_the_tasks_custom_jobs_and_page_with_the_same_filter():
    job = {"jobDetail": {"taskDetails": [
        {"taskName": "Trainer", "executorDetail": {"containerDetail": {"mainJob": "projects/p/locations/l/customJobs/111"}}},
        {"taskName": "Transform", "executorDetail": {"containerDetail": {"mainJob": "projects/p/locations/l/customJobs/222"}}},
        {"taskName": "my-pipeline"}]}}
    children = {"customJobs": [{"name": "projects/p/locations/l/customJobs/333"}]}
    pages = iter([{"entries": [{"timestamp": "t1", "severity": "INFO", "textPayload": "epoch 1",
                                "resource": {"labels": {"job_id": "333"}}}], "nextPageToken": "abc"},
                  {"entries": [{"timestamp": "t2", "severity": "ERROR", "jsonPayload": {"message": "OOM"},
                                "resource": {"labels": {"job_id": "111"}}}]}])
    rest = FakeRest([("pipelineJobs", job), ("customJobs", children), ("entries:list", lambda kw: next(pages))])
    logs = CloudLoggingLogs("p", "l", rest)
    first = logs.read({"id": "tr-1"}, "tr-1-a1", "Train", 1, None)
    assert first["entries"][0] == {"timestamp": "t1", "severity": "INFO", "stage": "Train", "task": "333",
                                   "message": "epoch 1"}
    body = rest.calls[-1][2]["json"]
    assert 'resource.labels.job_id="111"' in body["filter"] and 'resource.labels.job_id="333"' in body["filter"]
    assert "222" not in body["filter"] and body["pageSize"] == 1
    assert first["next_cursor"] == {"t": "abc", "m": {"111": "Train", "333": "Train"}}
    second = logs.read({"id": "tr-1"}, "tr-1-a1", "Train", 1, first["next_cursor"])
    assert second["entries"][0]["message"] == "OOM" and second["next_cursor"] is None
    assert rest.calls[-1][2]["json"]["pageToken"] == "abc" and rest.calls[-1][2]["json"]["filter"] == body["filter"]


def test_local_logs_attribute_lines_to_stages_and_page(monkeypatch):
    lines = ["Component ExampleGen is running."] + [f"x{i}" for i in range(4)] + ["Component Trainer is running.", "t0"]
    logs = LocalPipelineLogs("http://svc")
    monkeypatch.setattr(logs, "_chunk", lambda job_id, offset: {"lines": lines[offset:offset + 3],
                                                                 "total_lines": len(lines)})
    monkeypatch.setattr(LocalPipelineLogs, "MAX_CHUNKS", 10)
    page = logs.read({}, "j", "Examples", 2, None)
    assert [e["message"] for e in page["entries"]] == ["Component ExampleGen is running.", "x0"]
    page = logs.read({}, "j", "Examples", 10, page["next_cursor"])
    assert [e["message"] for e in page["entries"]] == ["x1", "x2", "x3"] and page["next_cursor"] is None
    train = logs.read({}, "j", "Train", 10, None)
    assert [e["message"] for e in train["entries"]] == ["Component Trainer is running.", "t0"]


def test_the_logging_filter_names_only_valid_job_ids_each_quoted():
    from shared.adapters.run_data_sources import logging_string, task_logs_filter

    assert logging_string('a"b\\c') == '"a\\"b\\\\c"'
    assert task_logs_filter({"111": "Train", '1" OR logName:"x': "Train"}) == \
        'resource.type="ml_job" AND (resource.labels.job_id="111")'
    assert task_logs_filter({'" OR true OR "': "Train"}) is None
