"""Security review LOW "IAM breadth", from the parsed and evaluated Terraform, and what the API does with
the narrower grants: the API publishes only to its own topics (and replays only those), images are
pinned to an immutable tag, and a Cloud Billing budget with alerts comes with the deployment.

The review's other two IAM suggestions are not taken, for reasons docs/security.md "IAM breadth" gives
with sources: an IAM condition on `trainyard-*` job names cannot narrow the scheduler role (Cloud
Scheduler is not among the services that recognise resource attributes in conditions), and the build
account's project-level artifactregistry.writer is what Google documents for gen2 function builds."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.dead_letters import DeadLetters
from shared.contract import topics
from shared.http.app import Dependencies, create_app
from shared.settings import Settings, get_settings
from tests.fakes import FakePublisher, FakePubSub, InMemoryRepository
from tests.rehearsal import terraform_model
from tests.unit.terraform_support import hcl
from tests.unit.terraform_support.hcl import TF_ROOT

EXAMPLE = TF_ROOT / "examples/minimal/minimal.tfvars"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def plan(**inputs) -> terraform_model.Instance:
    values = {**terraform_model.read_tfvars(EXAMPLE), **inputs}
    return terraform_model.Instance(terraform_model.ModuleSource(TF_ROOT), values, TF_ROOT.resolve())


def api_member(instance) -> str:
    return f"serviceAccount:trainyard-api@{instance.var('project_id')}.iam.gserviceaccount.com"


def test_the_api_may_publish_only_to_the_topics_it_publishes_to():
    """Review: "the API can publish to every topic, which only replay needs". A compromised API (or
    replay) can no longer inject pipeline events, training progress or reconcile passes."""
    instance = plan()
    granted = {r.args["topic"] for r in instance.resources("google_pubsub_topic_iam_member", "publishers")
               if r.args["member"] == api_member(instance)}
    assert granted == set(topics.API_PUBLISHES) == {"run-submit", "run-commands", "schedule-trigger"}
    assert not granted & {topics.PIPELINE_EVENTS, topics.TRAINING_PROGRESS, topics.RECONCILE}


@pytest.mark.parametrize("topic", sorted(set(topics.ALL) - set(topics.API_PUBLISHES)))
def test_an_admin_replay_onto_a_topic_the_api_may_not_publish_to_is_refused_before_anything_is_pulled(topic):
    pubsub = FakePubSub()
    hold = f"projects/p/subscriptions/{topic}-dead-letter-hold"
    pubsub.dead_letter(hold, json.dumps({"forged": True}).encode())
    settings = replace(get_settings(), auth_mode="local", dev_token=TOKEN, dev_identity="ops@example.com",
                       admins=Settings.from_environ({"TRAINYARD_ADMINS": "ops@example.com"}).admins)
    client = create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                     settings=settings, dead_letters=DeadLetters("p", pubsub, pubsub))).test_client()
    response = client.post(f"/api/admin/dead-letters/{topic}/replay", headers=AUTH)
    assert response.status_code == 403 and "--direct" in response.get_json()["message"]
    assert pubsub.published == [] and len(pubsub.held[hold]) == 1  # nothing taken off the hold
    assert client.get(f"/api/admin/dead-letters/{topic}", headers=AUTH).status_code == 200  # listing still works


def test_images_are_pinned_to_an_immutable_tag_and_a_full_apply_needs_one():
    """Review: "`image_tag` defaults to the mutable `latest`". No default tag, `latest` refused; the first,
    targeted apply (docs/deploy.md step 6) still runs without one."""
    root = hcl.load_dir(TF_ROOT)
    image_tag = next(block["image_tag"] for block in root["variable"] if "image_tag" in block)
    assert image_tag.get("default") is None
    condition = image_tag["validation"][0]["condition"]
    assert '!= "latest"' in condition and "var.image_tag == null" in condition
    guard = hcl.resources(root)[("terraform_data", "image_tag_is_set")]
    assert "var.image_tag != null" in guard["lifecycle"][0]["precondition"][0]["condition"]
    env = plan(image_tag="3f9c2ab").local("environment")
    assert env["submitter"]["TRAINYARD_PIPELINE_IMAGE"].endswith(":3f9c2ab")
    assert env["submitter"]["TRAINYARD_SERVING_IMAGE"].endswith(":3f9c2ab")
    assert "latest" not in terraform_model.read_tfvars(EXAMPLE)["image_tag"]


def test_a_billing_budget_with_alerts_is_made_when_a_billing_account_is_given():
    without = plan()
    assert without.resources("google_billing_budget", "project") == []
    instance = plan(billing_account="012345-6789AB-CDEF01", monthly_budget=5000,
                    budget_alert_emails=["finops@example.com", "ml-leads@example.com"])
    (budget,) = instance.resources("google_billing_budget", "project")
    args = budget.args
    assert args["billing_account"] == "012345-6789AB-CDEF01"
    assert args["budget_filter"][0]["projects"] == [f"projects/{instance.local('project_number')}"]
    assert args["budget_filter"][0]["calendar_period"] == "MONTH"
    assert args["amount"][0]["specified_amount"][0]["units"] == "5000"
    rules = [(r["threshold_percent"], r["spend_basis"]) for r in args["threshold_rules"]]
    assert {(0.5, "CURRENT_SPEND"), (0.9, "CURRENT_SPEND"), (1.0, "CURRENT_SPEND"), (1.0, "FORECASTED_SPEND")} <= set(rules)
    alerts = args["all_updates_rule"][0]
    assert alerts["schema_version"] == "1.0" and "trainyard-budget-alerts" in alerts["pubsub_topic"]
    assert len(alerts["monitoring_notification_channels"]) == 2
    emails = {r.args["labels"]["email_address"] for r in instance.resources(
        "google_monitoring_notification_channel", "budget_email")}
    assert emails == {"finops@example.com", "ml-leads@example.com"}
    assert "billingbudgets.googleapis.com" in instance.local("required_apis")
