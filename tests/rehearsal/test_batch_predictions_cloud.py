"""Batch recommendations as deployed: a deployer asks the API function for top-K over HTTP; the run-commands
service (from its own tree, with its Terraform environment) takes the `batch_predict` command and, with the
official aiplatform JobServiceClient over Vertex's gRPC protocol, creates one BatchPredictionJob of the
run's registered model version (registered with the serving image Terraform gives the deployment), reading
the instances the API wrote and writing JSONL under the requested prefix on the machines its user count
needs; it follows the job until Vertex ends it and records progress, rows and where they are on the run. A
second delivery of the command follows the recorded job: no second job. A job Vertex fails fails the batch
with Vertex's reason.

The runs are seeded as completed with a registered model (the training path is rehearsed in
test_cloud_runs.py): a draft, so no submit is queued and nothing compiles it behind the test's back.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.contract import labels, results
from shared.domain import batch_predictions, runs, teams
from tests.builders import dataset_body, feature_config_body, model_config_body
from tests.rehearsal.test_cloud_runs import _assert_iam_table_names_every_rpc_served
from tests.rehearsal.test_cloud_runs import api  # noqa: F401 - the fixture: ana, deployer on team recs

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
TEAM = "recs"  # terraform/examples/minimal/minimal.tfvars: ana is its deployer, its bucket my-trainyard-project-data
USERS = ["u-101", "u-102", "u-103"]
RUN_COMMANDS = 'consumer_service["run_commands"]'


def _declared(cloud) -> tuple:
    return teams.parse(json.loads(cloud.deployment.functions["fn_api"].env["TRAINYARD_TEAMS"]))


def _operator(cloud):
    """The deployment's operator (admin_emails, and admin of team recs), who makes the team's catalog."""
    env = cloud.deployment.functions["fn_api"].env
    admin = env["TRAINYARD_ADMINS"].split(",")[0]
    return teams.caller(admin, _declared(cloud), admins=[admin])


def _registered_run(cloud, name: str, team: str | None = TEAM) -> dict:
    """A completed run of `team` (None: of no team, the operator's) whose model version is registered in Vertex's
    ModelService (gRPC) by the Pusher's registrar with the serving image Terraform compiles into the Pusher, its
    entry under its files."""
    from pipeline_compiler.registry import VertexRegistrar
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.services import catalog_entries, intake
    from shared.services.ports import Effects

    who, declared = _operator(cloud), _declared(cloud)
    if team is None:
        who, declared = teams.caller(who.email, (), admins=[who.email]), ()
    dataset = catalog_entries.create(cloud.repo, "datasets", dataset_body(
        name=f"{name} data", team=team, stats={"rows": 20_000},
        source={"kind": "files", "uri": f"gs://{cloud.project}-data/batch/*.csv"}), who, declared)
    features = catalog_entries.create(cloud.repo, "feature_configs", feature_config_body(team=team), who, declared)
    model = catalog_entries.create(cloud.repo, "model_configs", model_config_body(team=team), who, declared)
    experiment = catalog_entries.create(cloud.repo, "experiments", {
        "name": f"{name} experiment", "model_type": "retrieval", "dataset_id": dataset["id"], "team": team,
        "feature_config_id": features["id"], "model_config_id": model["id"],
        "params": {"epochs": 2, "batch_size": 1024, "learning_rate": 0.05}}, who, declared)
    run = intake.create_run(cloud.repo, Effects(cloud.publisher, LocalTickerJobs()),
                            {"name": name, "base_experiment_id": experiment["id"], "team": team, "draft": True},
                            who, declared)
    artifacts = results.join(cloud.rehearsal.roots["TRAINYARD_ARTIFACTS_ROOT"], run["id"])
    image = cloud.deployment.services['consumer_service["submitter"]'].env["TRAINYARD_SERVING_IMAGE"]
    registrar = VertexRegistrar(cloud.project, cloud.region, image, emulator_host=cloud.vertex.server.address, wait_s=30)
    entry = registrar.register(SimpleNamespace(run_id=run["id"], attempt=1, run_number=1, model_type="retrieval",
                                               run_name=name, artifacts_uri=artifacts),
                               results.join(artifacts, results.SAVED_MODEL_DIR))
    registry = Path(results.join(artifacts, results.REGISTRY_FILE))
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text(entry.model_dump_json(indent=2))
    return cloud.repo.mutate_run(run["id"], lambda d: {
        **d, "status": runs.COMPLETED, "gcs_artifacts_path": artifacts, "is_blessed": True,
        "vertex_model_name": name, "vertex_model_resource_name": entry.model_resource_name,
        "vertex_model_version": entry.model_version_id})


def _created(cloud, run_id: str) -> list:
    """CreateBatchPredictionJob requests for this run (the fake is shared by every rehearsal module)."""
    return [r for r in cloud.vertex.server.requests("create_batch_prediction_job")
            if r.batch_prediction_job.labels.get(labels.RUN_ID_LABEL) == labels.label_value(run_id)]


def _batch(api, run_id: str) -> dict:  # noqa: F811 - api is the fixture's value
    return api.get(f"/api/training-runs/{run_id}")["training_run"].get("batch_prediction") or {}


def test_a_deployer_writes_top_k_through_a_batch_prediction_job_and_a_redelivery_starts_no_second(cloud, api):  # noqa: F811
    """Two batches at once (run-commands holds a delivery while it follows a job; with two held, the emulator
    pushed no third within two minutes): team recs' run, asked by its deployer, writes GCS JSONL; a run of no
    team, which only the operator may use, writes GCS and BigQuery, and its BigQuery job fails."""
    good, other = _registered_run(cloud, "batch-rehearsal-good"), _registered_run(cloud, "batch-rehearsal-other", team=None)
    prefix, dataset = f"gs://{cloud.project}-data/batch-rehearsal", f"{cloud.project}.recs_batch"
    asked = {"users": USERS, "k": 10, "gcs_output": f"{prefix}/{good['name']}"}
    assert api.post(f"/api/training-runs/{good['id']}/batch-predictions", asked)["changed"] is True
    # BigQuery: team recs declares no dataset, so its deployer may not; the run of no team is the operator's alone.
    api.post(f"/api/training-runs/{other['id']}/batch-predictions", {"users": USERS, "gcs_output": prefix}, expect=403)
    operator = _as(cloud, api, _operator(cloud).email)
    operator.post(f"/api/training-runs/{other['id']}/batch-predictions",
                  {"users": USERS, "k": 5, "gcs_output": f"{prefix}/{other['name']}", "bigquery_output": dataset})

    # The command reached run-commands, which created each job and recorded it: the runs show them running.
    def recorded(run_id: str, kinds: set):
        batch = _batch(operator, run_id)
        outputs = batch.get("outputs") or {}
        return set(outputs) == kinds and all(o.get("job") for o in outputs.values()) and batch
    try:
        progress = {good["id"]: cloud.wait(lambda: recorded(good["id"], {"gcs"}), 120, "the good run's job"),
                    other["id"]: cloud.wait(lambda: recorded(other["id"], {"gcs", "bigquery"}), 120, "the other's jobs")}
    except AssertionError as exc:  # say what run-commands did instead
        raise AssertionError(f"{exc}\n{cloud.rehearsal.processes[RUN_COMMANDS].text()[-3000:]}") from None
    for batch in progress.values():
        assert batch["status"] == batch_predictions.RUNNING
        assert {o["state"] for o in batch["outputs"].values()} == {batch_predictions.RUNNING}

    (request,) = _created(cloud, good["id"])
    job = request.batch_prediction_job
    assert request.parent == f"projects/{cloud.project}/locations/{cloud.region}"
    assert job.model == f"{good['vertex_model_resource_name']}@{good['vertex_model_version']}"
    # Runs as the pipeline's account Terraform made (not a default agent a hardened project may not grant).
    pipeline_account = cloud.deployment.services[RUN_COMMANDS].env["TRAINYARD_PIPELINE_SERVICE_ACCOUNT"]
    assert pipeline_account.startswith("trainyard-pipeline@") and job.service_account == pipeline_account
    version = cloud.models.version(job.model)
    assert version.container_spec.image_uri == cloud.deployment.services[RUN_COMMANDS].env["TRAINYARD_SERVING_IMAGE"]
    assert job.input_config.instances_format == "jsonl"
    (input_uri,) = job.input_config.gcs_source.uris
    user_column = dataset_body()["columns"]["user_id"]
    assert [json.loads(line) for line in Path(input_uri).read_text().splitlines()] == [{user_column: u} for u in USERS]
    assert job.output_config.predictions_format == "jsonl"
    assert job.output_config.gcs_destination.output_uri_prefix == asked["gcs_output"]
    assert dict(job.model_parameters) == {"k": 10}
    machine_type = cloud.deployment.services[RUN_COMMANDS].env.get(
        "TRAINYARD_DEPLOY_MACHINE_TYPE", "n1-standard-4")  # shared/settings.py's default when Terraform sets none
    resources = job.dedicated_resources
    assert resources.machine_spec.machine_type == machine_type
    assert resources.starting_replica_count == resources.max_replica_count == batch_predictions.machine_count(len(USERS))
    name = progress[good["id"]]["outputs"]["gcs"]["job"]
    assert name.startswith(f"{request.parent}/batchPredictionJobs/")
    # Two outputs, two jobs (a job writes one destination), each labelled with its kind.
    by_kind = {r.batch_prediction_job.labels["trainyard-batch-output"]: r.batch_prediction_job
               for r in _created(cloud, other["id"])}
    assert by_kind["bigquery"].output_config.predictions_format == "bigquery"
    assert by_kind["bigquery"].output_config.bigquery_destination.output_uri == f"bq://{dataset}"
    assert by_kind["gcs"].output_config.gcs_destination.output_uri_prefix == f"{prefix}/{other['name']}"
    assert {dict(j.model_parameters)["k"] for j in by_kind.values()} == {5}

    # The same request again: already running; it re-queues the command, whose delivery follows the recorded job.
    again = api.post(f"/api/training-runs/{good['id']}/batch-predictions", asked)
    assert again["changed"] is False and "already running" in again["message"]

    # Vertex ends the jobs: with their rows and where they are, and one BigQuery job with an error.
    cloud.jobs.finish_batch(name, successful=len(USERS) - 1, failed=1)
    jobs = progress[other["id"]]["outputs"]
    cloud.jobs.finish_batch(jobs["gcs"]["job"], successful=len(USERS))
    cloud.jobs.finish_batch(jobs["bigquery"]["job"], "JOB_STATE_FAILED",
                            error="BigQuery dataset my-trainyard-project:recs_batch was not found in location europe-west4")
    ended = {r["id"]: cloud.wait(lambda r=r: (b := _batch(operator, r["id"]))["status"] != batch_predictions.RUNNING and b,
                                 120, f"{r['name']}'s batch to end") for r in (good, other)}
    done = ended[good["id"]]
    assert done["status"] == batch_predictions.SUCCEEDED, done
    out = done["outputs"]["gcs"]
    assert (out["rows"], out["failed_rows"]) == (len(USERS) - 1, 1)
    assert out["location"].startswith(f"{asked['gcs_output']}/prediction-")
    failed = ended[other["id"]]
    assert failed["status"] == batch_predictions.FAILED and "was not found in location" in failed["error"]
    assert failed["outputs"]["bigquery"]["state"] == batch_predictions.FAILED
    written = failed["outputs"]["gcs"]  # the output that succeeded keeps its rows and location
    assert written["rows"] == len(USERS) and written["location"].startswith(f"{prefix}/{other['name']}/prediction-")
    assert len(_created(cloud, good["id"])) == 1 and len(_created(cloud, other["id"])) == 2
    # Both deliveries of the good run's command were handled: each followed the one job, or found it ended.
    handled = cloud.wait(lambda: len(o := _outcomes(cloud, good["id"])) == 2 and o, 60, "the repeat's command")
    assert "done" in handled and set(handled) <= {"done", "skipped"}, handled
    _assert_iam_table_names_every_rpc_served(cloud)  # run-commands' batch calls have their grants


def _as(cloud, api, email: str):  # noqa: F811 - api is the fixture's value
    """The API as another member of the organisation: a token minted for the same audience."""
    from tests.identity_tokens import delivered_token
    from tests.rehearsal.test_cloud_runs import Api

    other = Api(cloud)
    other.email = email
    other.session.headers["Authorization"] = f"Bearer {delivered_token(email, aud=api.audience)}"
    return other


def _outcomes(cloud, run_id: str) -> list[str]:
    return [e["outcome"] for e in cloud.log_entries(RUN_COMMANDS)
            if e.get("run_id") == run_id and e.get("message") == "message handled"]
