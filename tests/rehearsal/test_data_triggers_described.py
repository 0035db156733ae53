"""The cloud side of training on new data (terraform/data_triggers.tf), read as a plan would read it: the
bucket notifications and the BigQuery sink publish to the topic the data_triggers consumer is subscribed to,
with the grants they need; the provider schemas accept them; the sink's filter forwards the canonical
tableDataChange audit entry (tests/events/) and nothing near it; what the notification sends is what the
consumer reads."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.domain import data_triggers
from tests.events import load_event, payload_of
from tests.rehearsal import terraform_model
from tests.rehearsal.logging_filter import matches

REPO = Path(__file__).resolve().parents[2]
TF_ROOT = REPO / "terraform"
TFVARS = '''
data_trigger_buckets = [
  {
    bucket = "acme-recs-landing"
    prefix = "interactions/"
  },
  {
    bucket = "acme-recs-items"
    prefix = ""
  },
]
data_trigger_tables = [
  {
    project = null
    dataset = "events"
    table   = "interactions"
  },
]
'''  # optional() attributes written out: tests/rehearsal/terraform_model.py does not fill their defaults


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    tfvars = tmp_path_factory.mktemp("tf") / "data.tfvars"
    tfvars.write_text((TF_ROOT / "examples/minimal/minimal.tfvars").read_text() + TFVARS)
    return terraform_model.load(TF_ROOT, tfvars)


def test_the_bucket_notifications_send_new_objects_to_the_consumers_topic(plan):
    project = plan.var("project_id")
    topic = f"projects/{project}/topics/data-landed"
    consumers = json.loads((TF_ROOT / "consumers.json").read_text())["consumers"]
    assert consumers["data_triggers"]["topic"] == "data-landed"
    notes = plan.resource_instances("google_storage_notification", "data_landed")
    assert sorted(notes) == ["acme-recs-items/", "acme-recs-landing/interactions/"]
    landing = plan.resource("google_storage_notification", "data_landed", "acme-recs-landing/interactions/").args
    assert (landing["bucket"], landing["topic"], landing["payload_format"], landing["event_types"]) == (
        "acme-recs-landing", topic, "JSON_API_V1", ["OBJECT_FINALIZE"])
    assert landing["object_name_prefix"] == "interactions/"
    assert plan.resource("google_storage_notification", "data_landed", "acme-recs-items/").args.get(
        "object_name_prefix") is None
    grant = plan.resource("google_pubsub_topic_iam_member", "gcs_agent_publishes_data_landed", 0).args
    assert (grant["topic"], grant["role"]) == ("data-landed", "roles/pubsub.publisher")
    assert grant["member"].startswith("serviceAccount:")


def test_the_sink_publishes_to_the_same_topic_with_its_own_identity(plan):
    project = plan.var("project_id")
    sink = plan.resource("google_logging_project_sink", "bigquery_data_landed", 0).args
    assert sink["destination"] == f"pubsub.googleapis.com/projects/{project}/topics/data-landed"
    assert sink["unique_writer_identity"] is True
    grant = plan.resource("google_pubsub_topic_iam_member", "data_sink_writer_publisher", 0).args
    assert (grant["topic"], grant["role"]) == ("data-landed", "roles/pubsub.publisher")


def _entry(project: str) -> dict:
    return payload_of(load_event("bigquery_table_data_change.json", **{"acme-recs": project}))


def test_the_sink_filter_forwards_the_canonical_table_write_and_nothing_near_it(plan):
    project = plan.var("project_id")
    sink_filter = plan.resource("google_logging_project_sink", "bigquery_data_landed", 0).args["filter"]
    entry = _entry(project)
    assert matches(sink_filter, entry)
    event = data_triggers.from_audit_entry(entry, None)  # its own timestamp
    assert event.location == f"{project}.events.interactions"  # what a schedule's data_trigger.table names

    def changed(mutate):
        other = copy.deepcopy(entry)
        mutate(other)
        return other

    near = {
        "another table": changed(lambda e: e["protoPayload"].update(
            resourceName=f"projects/{project}/datasets/events/tables/items")),
        "a read": changed(lambda e: e["protoPayload"]["metadata"].update(
            tableDataRead=e["protoPayload"]["metadata"].pop("tableDataChange"))),
        "the admin-activity log": changed(lambda e: e.update(
            logName=f"projects/{project}/logs/cloudaudit.googleapis.com%2Factivity")),
        "the old AuditData format": changed(lambda e: e["resource"].update(type="bigquery_resource")),
        "another project's log": changed(lambda e: e.update(
            logName="projects/elsewhere/logs/cloudaudit.googleapis.com%2Fdata_access")),
    }
    assert {name for name, e in near.items() if matches(sink_filter, e)} == set()


def test_the_filter_reader_refuses_what_it_cannot_read():
    with pytest.raises(ValueError):
        matches('a.b=~"x"', {})
    assert matches('NOT a:* AND (b="1" OR c="2")', {"c": 2}) and not matches('a="1" b="2"', {"a": "1"})


def test_what_a_notification_sends_is_what_the_consumer_reads(plan):
    """The attributes of payload format JSON_API_V1 (the canonical event's) name the same object as its data."""
    body = load_event("storage_object_finalize.json")
    attributes, obj = body["message"]["attributes"], payload_of(body)
    assert attributes["payloadFormat"] == "JSON_API_V1" and attributes["eventType"] == "OBJECT_FINALIZE"
    assert (attributes["bucketId"], attributes["objectId"], attributes["objectGeneration"]) == (
        obj["bucket"], obj["name"], obj["generation"])
    event = data_triggers.from_message(attributes, obj, None)
    assert data_triggers.matches({"source": "gcs", "bucket": "acme-recs-landing", "prefix": "interactions/"}, event)


def test_the_provider_schemas_accept_the_data_triggers(tmp_path):
    """terraform/ with the buckets and tables set, through the offline schema checker (--strict)."""
    root = tmp_path / "terraform"
    subprocess.run(["cp", "-r", str(TF_ROOT), str(root)], check=True)
    (root / "data.auto.tfvars").write_text(TFVARS)
    tool = REPO / "tools" / "terraform_schema" / "check_tf.py"
    result = subprocess.run([sys.executable, str(tool), "--root", str(root), "--strict", "--json",
                             str(tmp_path / "r.json")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:]
    findings = json.loads((tmp_path / "r.json").read_text())["findings"]
    assert [f for f in findings if f["severity"] in ("error", "warning")] == []
