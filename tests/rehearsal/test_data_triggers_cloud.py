"""Training on new data, end to end as deployed: what Cloud Storage's bucket notification and the BigQuery log
sink publish on the topic Terraform points them at (terraform/data_triggers.tf) reaches the data-triggers
function by its push subscription; it fires each matching schedule once, the scheduler path makes the run,
and the submitter compiles it and creates its PipelineJob over gRPC. A duplicate (Pub/Sub delivers at least
once; Cloud Storage may notify twice) fires nothing more.

The payloads are the documented ones (tests/events/, shared with test_data_triggers_described.py):
- a notification of payload format JSON_API_V1: the object resource as JSON in the data, and the attributes
  notificationConfig, eventType, payloadFormat, bucketId, objectId, objectGeneration, eventTime
  (cloud.google.com/storage/docs/pubsub-notifications);
- a sink's message: the LogEntry as JSON in the data, with the attribute logging.googleapis.com/timestamp
  (cloud.google.com/logging/docs/export/pubsub), here the tableDataChange audit entry the sink's filter forwards.
"""
from __future__ import annotations

import base64
import json
import re
import uuid

import pytest

from shared.contract import labels, topics
from shared.domain import data_triggers, runs
from tests.events import load_event
from tests.rehearsal.logging_filter import matches
from tests.rehearsal.test_data_triggers_described import plan  # noqa: F401 - the fixture: terraform/ with triggers set
from tests.rehearsal.test_deployment_runs import catalog, member  # noqa: F401 - the fixture
from tests.rehearsal.vertex_run import now

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]


def _schedule(cloud, experiment: str, name: str, trigger: dict) -> dict:
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.services import scheduling

    return scheduling.create_schedule(cloud.repo, {
        "name": name, "schedule_type": "data", "data_trigger": trigger,
        "run_template": {"name": name.replace(" ", "-"), "base_experiment_id": experiment}}, *member(), LocalTickerJobs())


def _notification(bucket: str, name: str) -> tuple[dict, dict]:
    """(attributes, object) of a new object, as the canonical notification carries them."""
    message = load_event("storage_object_finalize.json")["message"]
    obj = json.loads(base64.b64decode(message["data"]))
    generation, created = str(now().timestamp() * 1e6)[:16], now().isoformat().replace("+00:00", "Z")
    obj.update(bucket=bucket, name=name, generation=generation, timeCreated=created, updated=created,
               id=f"{bucket}/{name}/{generation}")
    attributes = {**message["attributes"], "bucketId": bucket, "objectId": name, "objectGeneration": generation,
                  "eventTime": created, "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1"}
    return attributes, obj


def _published_twice(cloud, payload: dict, attributes: dict) -> None:
    for _ in range(2):
        message_id = cloud.publisher.publish(topics.DATA_LANDED, payload, **attributes)
        cloud.handled('consumer_function["data_triggers"]', message_id)


def _one_run_and_its_job(cloud, schedule_id: str) -> tuple[dict, dict]:
    made = cloud.repo.list_runs({"schedule_id": schedule_id}, 10)
    assert len(made) == 1, [r["id"] for r in made]
    job_id = labels.job_id_for(made[0]["id"], 1)
    cloud.wait(lambda: any(n.endswith("/" + job_id) for n in cloud.pipelines.jobs), 420, f"the PipelineJob {job_id}")
    run = cloud.wait(lambda: (d := cloud.repo.get_run(made[0]["id"]))["status"] == runs.RUNNING and d, 60,
                     f"{made[0]['id']} to be running")
    return run, cloud.pipelines.job(job_id)


def test_new_objects_and_table_writes_start_one_run_each_whose_pipeline_job_is_created(cloud, catalog, plan):  # noqa: F811
    # The topic both publishers are given is the one the deployed consumer's push subscription reads.
    data_push = next(p for p in cloud.deployment.pushes.values() if p.target == 'consumer_function["data_triggers"]')
    note = plan.resource("google_storage_notification", "data_landed", "acme-recs-landing/interactions/").args
    sink = plan.resource("google_logging_project_sink", "bigquery_data_landed", 0).args
    assert note["topic"].rsplit("/", 1)[-1] == sink["destination"].rsplit("/", 1)[-1] == data_push.topic == topics.DATA_LANDED
    assert (note["payload_format"], note["event_types"]) == ("JSON_API_V1", ["OBJECT_FINALIZE"])

    # Its own prefix: other modules' schedules watch acme-recs-landing/interactions/ (shared emulator).
    prefix = f"interactions/lifecycle-{uuid.uuid4().hex[:8]}/"
    files = _schedule(cloud, catalog["small"], "rehearsal landing files",
                      {"source": "gcs", "bucket": note["bucket"], "prefix": prefix})
    attributes, obj = _notification(note["bucket"], prefix + "part-0001.csv")
    assert obj["name"].startswith(note["object_name_prefix"])  # a notification Terraform's config would send
    _published_twice(cloud, obj, attributes)

    # The sink's LogEntry for a job that wrote the watched table, as it publishes it.
    table = f"{cloud.project}.events.interactions"
    entry_body = load_event("bigquery_table_data_change.json", **{"acme-recs": cloud.project})
    entry = json.loads(base64.b64decode(entry_body["message"]["data"]))
    stamp = now().isoformat().replace("+00:00", "Z")
    entry.update(timestamp=stamp, receiveTimestamp=stamp, insertId=f"-lifecycle{uuid.uuid4().hex[:8]}")
    entry["protoPayload"]["metadata"]["tableDataChange"]["jobName"] = \
        f"projects/{cloud.project}/jobs/bqjob_lifecycle_{uuid.uuid4().hex[:8]}"
    assert matches(sink["filter"], entry)  # the sink forwards it
    tables = _schedule(cloud, catalog["small"], "rehearsal table writes", {"source": "bigquery", "table": table})
    _published_twice(cloud, entry, {**entry_body["message"]["attributes"], "logging.googleapis.com/timestamp": stamp})

    for schedule, location in ((files, f"gs://{note['bucket']}/{obj['name']}"), (tables, table)):
        run, job = _one_run_and_its_job(cloud, schedule["id"])
        assert run["triggered_by"] == "data" and run["data_trigger"]["location"] == location
        assert job.labels[labels.RUN_ID_LABEL] == labels.label_value(run["id"])
        # Its events wake pipeline-events: the job id is one the log sink's filter admits (terraform/logging.tf).
        assert re.search(plan.local("pipeline_job_id_pattern"), job.name.rsplit("/", 1)[-1])
        kept = cloud.repo.get_schedule(schedule["id"])
        assert kept["total_runs"] == 1, kept
    event = data_triggers.from_message(attributes, obj, None)
    assert cloud.repo.list_runs({"schedule_id": files["id"]}, 10)[0]["id"] == data_triggers.run_id_for(files["id"], event)
