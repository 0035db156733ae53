"""Whole runs in the cloud configuration, as a user drives them: over HTTP with an ID token as Cloud
Run IAM delivers it, through the deployables Terraform describes (each from its own tree and with
only its Terraform environment), against the emulators and gRPC fakes of Vertex AI and Cloud
Scheduler reached by the real clients.

- create → submit (a real compile) → Vertex plays the job (tests/rehearsal/vertex_run.py) as log-sink
  entries → the run completes with its results → the Pusher's registration (ModelService) → the
  deployment_config's deploy after training (EndpointService: endpoint, deploy with a traffic split);
- a second run cancelled: its pipeline job and its Trainer's custom job;
- schedules over HTTP on Cloud Scheduler: created (a job), a failed run auto-pauses it (job PAUSED),
  resumed (200, job ENABLED; review B3), a one-time schedule's job deleted once it fired (B4).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from shared.domain import runs, schedules
from shared.contract import labels
from tests.builders import dataset_body, feature_config_body, model_config_body
from tests.identity_tokens import delivered_token
from tests.rehearsal.vertex_run import Player, now, publish_via_pubsub
from tests.unit.terraform_support.iam_table import rows as iam_rows
from tests.unit.terraform_support.iam_table import rpc_methods, served_method

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]


class Api:
    """The API function over HTTP, called as a member of the organisation with a token minted for it."""

    def __init__(self, cloud):
        env = cloud.deployment.functions["fn_api"].env
        self.url = cloud.rehearsal.processes["fn_api"].url
        # As a user would: the token is minted for Terraform's api_url output (review N10).
        self.audience = cloud.deployment.plan.output("api_url")
        self.email = f"ana@{env['TRAINYARD_ALLOWED_DOMAIN']}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {delivered_token(self.email, aud=self.audience)}"

    def call(self, method: str, path: str, body=None, expect: int | tuple = (200, 201, 202)):
        response = self.session.request(method, self.url + path, json=body, timeout=60)
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def post(self, path: str, body=None, **kw):
        return self.call("POST", path, body if body is not None else {}, **kw)

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)


@pytest.fixture(scope="module")
def api(cloud):
    return Api(cloud)


@pytest.fixture(scope="module")
def experiment(api, cloud):
    """A small catalog through the API: small data (its Beam stages stay inside the tasks)."""
    dataset = api.post("/api/datasets", dataset_body(
        name="cloud rehearsal data", source={"kind": "files", "uri": f"gs://{cloud.project}-data/small/*.csv"},
        stats={"rows": 20_000}))["item"]
    features = api.post("/api/feature-configs", feature_config_body())["item"]
    model = api.post("/api/model-configs", model_config_body())["item"]
    return api.post("/api/experiments", {
        "name": "cloud rehearsal quick test", "model_type": "retrieval", "dataset_id": dataset["id"],
        "feature_config_id": features["id"], "model_config_id": model["id"],
        "params": {"epochs": 2, "batch_size": 1024, "learning_rate": 0.05},
        "metrics": {"recall_at_100": 0.3}})["item"]["id"]


def submitted(cloud, api, experiment: str, name: str, **body) -> tuple[dict, str]:
    run = api.post("/api/training-runs", {"name": name, "base_experiment_id": experiment, **body})["training_run"]
    job_id = labels.job_id_for(run["id"], 1)
    cloud.wait(lambda: any(n.endswith("/" + job_id) for n in cloud.pipelines.jobs), 420, f"the PipelineJob {job_id}")
    cloud.wait(lambda: cloud.repo.get_run(run["id"])["status"] == runs.RUNNING, 60, f"{name} to be running")
    return run, job_id


def test_a_run_completes_registers_and_deploys_after_training(cloud, api, experiment):
    run, job_id = submitted(cloud, api, experiment, "cloud-rehearsal-deployed",
                            evaluator_config={"enabled": True, "blessing_threshold": {"metric": "recall_at_100",
                                                                                      "min_value": 0.2}},
                            deployment_config={"action": "deploy_new", "endpoint_name": "rehearsal-recs"})
    Player(cloud, job_id, run["id"]).succeed(recall_at_100=0.31)

    done = cloud.wait(lambda: (d := api.get(f"/api/training-runs/{run['id']}")["training_run"])["status"]
                      == runs.COMPLETED and d, 60, "the run to complete")
    assert done["metrics"]["recall_at_100"] == pytest.approx(0.31) and done["is_blessed"] is True
    assert {s["name"]: s["status"] for s in done["stage_details"]} == {
        s: "completed" for s in ("Compile", "Examples", "Stats", "Schema", "Transform", "Train", "Evaluate", "Push")}

    # The Pusher's registration reached ModelService with Trainyard's serving container and its contract.
    model_name = done["vertex_model_resource_name"]
    assert model_name.startswith(f"projects/{cloud.project}/locations/{cloud.region}/models/")
    uploaded = cloud.vertex.server.requests("upload_model")[-1].model
    serving_image = cloud.deployment.services['consumer_service["run_commands"]'].env["TRAINYARD_SERVING_IMAGE"]
    assert uploaded.container_spec.image_uri == serving_image
    assert (uploaded.container_spec.predict_route, uploaded.container_spec.health_route) == ("/predict", "/health")
    assert [p.container_port for p in uploaded.container_spec.ports] == [8080]
    assert uploaded.labels["trainyard-run-id"] == run["id"]

    # deployment_config: deploy_new → run-commands deploys it after training, on its own endpoint.
    deployed = cloud.wait(lambda: (d := cloud.repo.get_run(run["id"]).get("deployment") or {}).get("status")
                          in ("deployed", "failed") and d, 240, "the deployment after training")
    assert deployed["status"] == "deployed", deployed
    endpoint = cloud.endpoints.endpoint(deployed["endpoint_resource_name"])
    assert endpoint.display_name == "rehearsal-recs"
    assert [m.model.split("@")[0] for m in endpoint.deployed_models] == [model_name]
    assert dict(endpoint.traffic_split) == {endpoint.deployed_models[0].id: 100}
    assert deployed["predict_url"].endswith(f"{endpoint.name}:predict")

    # A redelivered final event changes nothing: one model version, one deployment.
    Player(cloud, job_id, run["id"]).step("PIPELINE_STATE_SUCCEEDED", task=False)
    # (this endpoint's: the fake is shared by every rehearsal module, test_canary_rollout deploys two of its own)
    assert len([r for r in cloud.vertex.server.requests("deploy_model") if r.endpoint == endpoint.name]) == 1
    _assert_iam_table_names_every_rpc_served(cloud)
    assert len([r for r in cloud.vertex.server.requests("upload_model") if r.model.labels["trainyard-run-id"] == run["id"]]) == 1


def test_a_cancelled_run_cancels_its_pipeline_job_and_its_trainers_custom_job(cloud, api, experiment):
    run, job_id = submitted(cloud, api, experiment, "cloud-rehearsal-cancelled")
    player = Player(cloud, job_id, run["id"])
    player.step("PIPELINE_STATE_RUNNING", {"Trainer": "RUNNING"})
    parent = f"projects/{cloud.project}/locations/{cloud.region}"
    custom_job = cloud.jobs.add_custom_job(parent, "trainer-cloud-rehearsal", {"trainyard-run-id": run["id"]})

    api.post(f"/api/training-runs/{run['id']}/cancel")
    cloud.wait(lambda: cloud.repo.get_run(run["id"])["status"] == runs.CANCELLED, 180, "the run to be cancelled")
    assert cloud.pipelines.job(job_id).state.name == "PIPELINE_STATE_CANCELLED"
    assert cloud.jobs.state(custom_job) == "JOB_STATE_CANCELLED"


def _assert_iam_table_names_every_rpc_served(cloud):
    """Every Vertex AI and Cloud Scheduler method the deployables called so far is a row of
    terraform/iam_requirements.yaml, so the IAM test checks its grant. Long-running operations are
    polled on the resource their call names: Operations.GetOperation has no row of its own."""
    served = {served_method(p) for p in cloud.vertex.server.served | cloud.scheduler_server.served}
    served -= {"Operations.GetOperation", "Operations.WaitOperation"}
    assert served and served <= rpc_methods(iam_rows()), sorted(served - rpc_methods(iam_rows()))


def _job(cloud, schedule_id: str) -> str:
    return f"projects/{cloud.project}/locations/{cloud.region}/jobs/trainyard-{schedule_id}"


def test_schedules_on_cloud_scheduler_auto_pause_resume_and_a_spent_one_time_job_is_deleted(cloud, api, experiment):
    template = {"name": "cloud-rehearsal-nightly", "base_experiment_id": experiment}
    # A one-time schedule due at the next minute (Cloud Scheduler's resolution): fired at the end.
    run_at = (now() + timedelta(seconds=75)).replace(second=0, microsecond=0)
    once = api.post("/api/training/schedules", {"name": "cloud rehearsal once", "schedule_type": "once",
                                                "run_at": run_at.isoformat(), "timezone": "UTC",
                                                "run_template": {**template, "name": "cloud-rehearsal-once"}})["schedule"]
    assert cloud.scheduler.state(_job(cloud, once["id"])) == "ENABLED"

    created = api.post("/api/training/schedules", {
        "name": "cloud rehearsal nightly", "schedule_type": "cron", "cron_expression": "* * * * *",
        "timezone": "UTC", "auto_pause_after_failures": 1, "run_template": template})["schedule"]
    name = _job(cloud, created["id"])
    job = cloud.scheduler.jobs[name]
    assert job.state.name == "ENABLED" and job.schedule == "* * * * *"
    assert job.pubsub_target.topic_name == f"projects/{cloud.project}/topics/schedule-trigger"

    # The job fires at its next minute, as Cloud Scheduler would; the scheduler function makes the
    # slot's run; its pipeline fails; one failure pauses the schedule and its job.
    slot = (now() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    cloud.wait(lambda: now() >= slot + timedelta(seconds=1), 90, "the cron job's next minute")
    handled = cloud.handled('consumer_function["scheduler"]', cloud.scheduler.fire(name, publish_via_pubsub))
    assert handled.get("outcome") != "ignored", handled
    run_id = schedules.slot_run_id(created["id"], slot)
    job_id = labels.job_id_for(run_id, 1)
    cloud.wait(lambda: any(n.endswith("/" + job_id) for n in cloud.pipelines.jobs), 420, f"the slot's PipelineJob {job_id}")
    cloud.wait(lambda: cloud.repo.get_run(run_id)["status"] == runs.RUNNING, 60, "the slot's run to be running")
    Player(cloud, job_id, run_id).fail_at("Trainer")
    paused = cloud.wait(lambda: (s := api.get(f"/api/training/schedules/{created['id']}")["schedule"])["status"]
                        == "paused" and s, 60, "the schedule to auto-pause")
    assert paused["paused_reason"] and cloud.repo.get_run(run_id)["status"] == runs.FAILED
    assert cloud.scheduler.state(name) == "PAUSED"

    resumed = api.post(f"/api/training/schedules/{created['id']}/resume", expect=200)  # was a 500 (B3)
    assert resumed["schedule"]["status"] == "active" and cloud.scheduler.state(name) == "ENABLED"
    api.post(f"/api/training/schedules/{created['id']}/cancel", expect=200)
    assert cloud.scheduler.state(name) is None

    # The one-time schedule fires at its minute, makes its run, and its (yearly) job is gone.
    once_name = _job(cloud, once["id"])
    cloud.wait(lambda: now() >= run_at + timedelta(seconds=2), 120, "the one-time schedule's minute")
    cloud.handled('consumer_function["scheduler"]', cloud.scheduler.fire(once_name, publish_via_pubsub))
    cloud.wait(lambda: cloud.scheduler.state(once_name) is None, 60, "the spent one-time job to be deleted")
    spent = api.get(f"/api/training/schedules/{once['id']}")["schedule"]
    assert spent["status"] == "completed" and spent["total_runs"] == 1
    _assert_iam_table_names_every_rpc_served(cloud)
