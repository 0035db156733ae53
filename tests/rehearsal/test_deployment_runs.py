"""The deployment, started as terraform/ and the Dockerfiles describe it, handles one real request or
event at each deployable: the API answers; the submitter — from the GPU image's tree, with its
Terraform environment — claims a run, compiles it for Vertex and submits it over Vertex's gRPC
protocol; pipeline_events reads the job back; training_progress keeps an epoch; the scheduler makes
a slot's run (small data: DirectRunner inside the task); run-commands cancels a run's pipeline job
and its Trainer's custom job. Nothing is answered 5xx, nothing is dead-lettered."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from shared.domain import runs, schedules, teams
from shared.contract import topics
from shared.contract import labels, results
from tests.builders import dataset_body, feature_config_body, model_config_body
from tests.rehearsal.deployment import topics_published_by

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
IDENTITY = "rehearsal@example.com"


def member() -> tuple:
    """(caller, teams) as the rehearsed deployment has them: minimal.tfvars declares no team, so its
    platform admin acts and what they make belongs to no team (the submitter checks a run's data
    against its team: a team the deployment does not declare would fail the run at Compile)."""
    return teams.caller(IDENTITY, (), admins=[IDENTITY]), ()


@pytest.fixture(scope="module")
def catalog(cloud):
    """A large dataset (Dataflow) and a small one (DirectRunner), with a retrieval experiment each."""
    from shared.services import catalog_entries

    ids = {}
    for size, rows in (("large", 5_000_000), ("small", 20_000)):
        dataset = catalog_entries.create(cloud.repo, "datasets", dataset_body(
            name=f"{size} data", source={"kind": "files", "uri": f"gs://{cloud.project}-data/{size}/*.csv"},
            stats={"rows": rows}), *member())
        features = catalog_entries.create(cloud.repo, "feature_configs", feature_config_body(), *member())
        model = catalog_entries.create(cloud.repo, "model_configs", model_config_body(), *member())
        experiment = catalog_entries.create(cloud.repo, "experiments", {
            "name": f"{size} quick test", "model_type": "retrieval", "dataset_id": dataset["id"],
            "feature_config_id": features["id"], "model_config_id": model["id"],
            "params": {"epochs": 20, "batch_size": 4096, "learning_rate": 0.05}, "metrics": {"recall_at_100": 0.5}},
            *member())
        ids[size] = experiment["id"]
    return ids


def compiled(cloud, job_id: str) -> dict:
    job = cloud.pipelines.job(job_id)
    return json_format.MessageToDict(aiplatform_v1.PipelineJob.pb(job))


def submitted_run(cloud, experiment_id: str, name: str, **body):
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.services import intake
    from shared.services.ports import Effects

    run = intake.create_run(cloud.repo, Effects(cloud.publisher, LocalTickerJobs()),
                            {"name": name, "base_experiment_id": experiment_id, **body}, *member())
    job_id = labels.job_id_for(run["id"], 1)
    # Cold start of the GPU image's tree (TensorFlow, TFX) and a real compile on two cores.
    cloud.wait(lambda: any(n.endswith("/" + job_id) for n in cloud.pipelines.jobs), 420, f"the PipelineJob {job_id}")
    return run, job_id


def _params(job: dict, task: str) -> dict:
    params = job["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
    return {k: v["runtimeValue"]["constantValue"]["stringValue"] for k, v in params.items()}


def _beam_args(job: dict, task: str) -> list[str]:
    return job["pipelineSpec"]["deploymentSpec"]["executors"][f"{task}_executor"]["container"]["args"]


# ----------------------------------------------------------------------------- the API


def test_the_api_starts_from_its_zip_and_answers(cloud):
    api = cloud.rehearsal.processes["fn_api"]
    assert requests.get(api.url + "/health", timeout=30).json()["status"] == "ok"
    refused = requests.get(api.url + "/api/training-runs", timeout=30)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthenticated"


def test_each_function_runs_with_exactly_its_locked_packages(cloud):
    """What Cloud Functions' build installs from the zip's requirements.txt is the lock, nothing more."""
    from tests.rehearsal.runtime import installed

    for module, fn in cloud.deployment.functions.items():
        process = cloud.rehearsal.processes[module]
        venv = Path(process.env["PATH"].split(":", 1)[0]).parent
        lock = dict(line.split("==") for line in (process.cwd / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#"))
        got = {k: v for k, v in installed(venv).items() if k not in ("pip", "setuptools", "wheel")}
        assert got == lock, module


# ----------------------------------------------------------------------------- submit, compile, Vertex


@pytest.fixture(scope="module")
def large_run(cloud, catalog):
    return submitted_run(cloud, catalog["large"], "rehearsal-large",
                         gpu_config={"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 2, "preemptible": True,
                                     "machine_count": 2})


def test_the_submitter_compiles_for_vertex_and_submits_over_grpc(cloud, large_run):
    run, job_id = large_run
    env = cloud.deployment.services['consumer_service["submitter"]'].env
    job = compiled(cloud, job_id)
    cloud.wait(lambda: cloud.repo.get_run(run["id"])["status"] == runs.RUNNING, 60, "the run to be running")

    assert job["serviceAccount"] == env["TRAINYARD_PIPELINE_SERVICE_ACCOUNT"]
    assert job["labels"]["trainyard-run-id"] == run["id"] and job["labels"]["trainyard-data-runner"] == "dataflow"
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {env["TRAINYARD_PIPELINE_IMAGE"]}

    trainer = json.loads(_params(job, "Trainer")["custom_config"])
    assert trainer["ai_platform_enable_vertex"] is True and trainer["ai_platform_vertex_region"] == cloud.region
    spec = trainer["ai_platform_training_args"]["job_spec"]
    pool, workers = spec["worker_pool_specs"]  # two machines: the chief's pool and one worker's
    assert pool["machine_spec"] == {"machine_type": "n1-standard-16", "accelerator_type": "NVIDIA_TESLA_T4",
                                    "accelerator_count": 2}
    assert pool["container_spec"]["image_uri"] == env["TRAINYARD_PIPELINE_IMAGE"]
    assert pool["replica_count"] == 1 and workers == {**pool, "replica_count": 1}
    assert spec["scheduling"]["strategy"] == "SPOT"
    assert spec["service_account"] == env["TRAINYARD_PIPELINE_SERVICE_ACCOUNT"]
    # Terraform's TensorBoard instance (tensorboard.tf), in the Trainer's region: the job uploads its event files.
    assert spec["tensorboard"] == env["TRAINYARD_VERTEX_TENSORBOARD"] and f"/locations/{cloud.region}/" in spec["tensorboard"]
    # the rehearsal replaces the gs:// roots by local folders (tests/rehearsal/runtime.py: no GCS emulator for TensorFlow)
    assert spec["base_output_directory"] == {"output_uri_prefix": results.join(results.join(
        cloud.rehearsal.roots["TRAINYARD_ARTIFACTS_ROOT"], run["id"]), results.TENSORBOARD_DIR)}

    bucket = env["TRAINYARD_PIPELINE_ROOT"]
    for task in ("ExampleGen", "StatisticsGen", "Transform"):
        args = _beam_args(job, task)
        for expected in ("--runner=DataflowRunner", f"--region={cloud.region}", f"--project={cloud.project}",
                         f"--temp_location={bucket}/dataflow-tmp", f"--sdk_container_image={env['TRAINYARD_DATAFLOW_IMAGE']}",
                         "--sdk_location=container", f"--service_account_email={env['TRAINYARD_PIPELINE_SERVICE_ACCOUNT']}",
                         f"--subnetwork={env['TRAINYARD_DATAFLOW_SUBNETWORK']}", "--no_use_public_ips"):
            assert expected in args, (task, expected)

    pusher = _params(job, "Pusher")
    assert pusher["target"] == "vertex" and pusher["project"] == cloud.project and pusher["region"] == cloud.region
    assert pusher["serving_image"] == env["TRAINYARD_SERVING_IMAGE"]


def test_pipeline_events_reads_the_job_back_over_grpc(cloud, large_run):
    run, job_id = large_run
    cloud.pipelines.advance(job_id, "PIPELINE_STATE_RUNNING", {"ExampleGen": "SUCCEEDED", "StatisticsGen": "RUNNING"})
    message_id = cloud.publish(topics.PIPELINE_EVENTS, cloud.log_entry_for(job_id, task=True))
    assert cloud.handled('consumer_function["pipeline_events"]', message_id)["outcome"] != "ignored"
    def stages():
        return {s["name"]: s["status"] for s in cloud.repo.get_run(run["id"])["stage_details"]}

    cloud.wait(lambda: stages()["Stats"] == "running", 30, "the Stats stage to run")
    assert stages()["Examples"] == "completed"


def test_training_progress_keeps_an_epoch(cloud, large_run):
    run, _ = large_run
    message_id = cloud.publish(topics.TRAINING_PROGRESS, {
        "run_id": run["id"], "attempt": 1, "epoch": 1, "total_epochs": 20, "loss": 0.9, "val_loss": 1.0,
        "learning_rate": 0.05, "metrics": {"recall_at_100": 0.2}, "timestamp": datetime.now(timezone.utc).isoformat()})
    cloud.handled('consumer_function["training_progress"]', message_id)
    cloud.wait(lambda: cloud.repo.get_run(run["id"]).get("current_epoch") == 1, 30, "epoch 1 on the run")


# ----------------------------------------------------------------------------- the scheduler


def test_the_scheduler_makes_the_slot_run_and_small_data_stays_off_dataflow(cloud, catalog):
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.services import scheduling

    created = scheduling.create_schedule(cloud.repo, {
        "name": "rehearsal nightly", "schedule_type": "cron", "cron_expression": "*/5 * * * *", "timezone": "UTC",
        "run_template": {"name": "rehearsal-small", "base_experiment_id": catalog["small"]}},
        *member(), LocalTickerJobs(), at=datetime.now(timezone.utc) - timedelta(hours=1))
    slot = schedules.slots_up_to(cloud.repo.get_schedule(created["id"]), datetime.now(timezone.utc))[-1]
    message_id = cloud.publish(topics.SCHEDULE_TRIGGER, {"schedule_id": created["id"],
                                                         "slot": slot.isoformat()})
    cloud.handled('consumer_function["scheduler"]', message_id)
    run_id = schedules.slot_run_id(created["id"], slot)
    job_id = labels.job_id_for(run_id, 1)
    cloud.wait(lambda: any(n.endswith("/" + job_id) for n in cloud.pipelines.jobs), 420, f"the PipelineJob {job_id}")
    job = compiled(cloud, job_id)
    assert job["labels"]["trainyard-data-runner"] == "direct"
    for task in ("ExampleGen", "StatisticsGen", "Transform"):
        args = _beam_args(job, task)
        assert "--runner=DirectRunner" in args and not [a for a in args if "Dataflow" in a or "sdk_container" in a]
    assert json.loads(_params(job, "Trainer")["custom_config"])["ai_platform_enable_vertex"] is True


def test_a_bucket_notification_makes_a_data_run_through_the_deployed_consumer(cloud, catalog):
    """tests/events/storage_object_finalize.json, published as Cloud Storage publishes it (its attributes), reaches
    consumer_function["data_triggers"] by the push subscription Terraform declares, as its identity: one run; the
    same notification again: still one."""
    import base64

    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.domain import data_triggers
    from shared.services import scheduling
    from tests.events import load_event

    created = scheduling.create_schedule(cloud.repo, {
        "name": "rehearsal on new data", "schedule_type": "data",
        "data_trigger": {"source": "gcs", "bucket": "acme-recs-landing", "prefix": "interactions/"},
        "run_template": {"name": "rehearsal-fresh", "base_experiment_id": catalog["small"]}},
        *member(), LocalTickerJobs())
    message = load_event("storage_object_finalize.json")["message"]
    payload = json.loads(base64.b64decode(message["data"]))
    for _ in range(2):
        message_id = cloud.publisher.publish(topics.DATA_LANDED, payload, **message["attributes"])
        cloud.handled('consumer_function["data_triggers"]', message_id)
    made = [r for r in cloud.repo.list_runs({"schedule_id": created["id"]}, 10)]
    assert [r["triggered_by"] for r in made] == ["data"]
    event = data_triggers.from_message(message["attributes"], payload, None)
    assert made[0]["id"] == data_triggers.run_id_for(created["id"], event)


# ----------------------------------------------------------------------------- run-commands


def test_run_commands_cancels_the_pipeline_job_and_the_trainers_custom_job(cloud, large_run):
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.services.actions import cancel
    from shared.services.ports import Effects

    run, job_id = large_run
    parent = f"projects/{cloud.project}/locations/{cloud.region}"
    custom_job = cloud.jobs.add_custom_job(parent, "trainer-rehearsal", {"trainyard-run-id": run["id"]})
    cancel.request(cloud.repo, Effects(cloud.publisher, LocalTickerJobs()), run["id"], member()[0])
    doc = cloud.wait(lambda: (d := cloud.repo.get_run(run["id"]))["status"] == runs.CANCELLED and d, 180,
                     "the run to be cancelled")
    assert cloud.pipelines.job(job_id).state.name == "PIPELINE_STATE_CANCELLED"
    assert cloud.jobs.state(custom_job) == "JOB_STATE_CANCELLED"
    assert doc["status"] == runs.CANCELLED


# ----------------------------------------------------------------------------- dead letters


def test_an_admin_replays_a_dead_letter_through_the_api_as_its_terraform_identity(cloud):
    """The admin routes as deployed: an operator of var.admin_emails sees what a topic dead-lettered and
    replays it — the API pulls the hold and publishes as its own account (the next test checks that
    Terraform grants it); someone else of the organisation is refused 403. A topic the API's account may
    not publish to (reconcile: security review LOW "IAM breadth") is refused 403 too, its hold untouched."""
    from google.cloud import pubsub_v1

    from tests.identity_tokens import delivered_token

    env = cloud.deployment.functions["fn_api"].env
    url, audience = cloud.rehearsal.processes["fn_api"].url, env["TRAINYARD_AUTH_AUDIENCE"].split(",")[0]
    admin = env["TRAINYARD_ADMINS"].split(",")[0]
    assert admin, "the example tfvars name an operator in admin_emails"
    client = pubsub_v1.PublisherClient()
    # A trigger of a schedule that no longer exists (its consumer acknowledges it), as Pub/Sub forwards
    # what it gave up on, and a reconcile tick.
    lost = client.publish(client.topic_path(cloud.project, topics.dead_letter(topics.SCHEDULE_TRIGGER)),
                          json.dumps({"schedule_id": "ts-gone"}).encode(), schedule_id="ts-gone").result(timeout=30)
    tick = client.publish(client.topic_path(cloud.project, topics.dead_letter(topics.RECONCILE)),
                          b"{}").result(timeout=30)

    def call(method: str, email: str, path: str, topic: str = topics.SCHEDULE_TRIGGER):
        return requests.request(method, f"{url}/api/admin/dead-letters/{topic}{path}", timeout=60,
                                params={"limit": 10}, headers={"Authorization": f"Bearer {delivered_token(email, aud=audience)}"})

    refused = call("POST", f"ana@{env['TRAINYARD_ALLOWED_DOMAIN']}", "/replay")
    assert refused.status_code == 403 and "TRAINYARD_ADMINS" in refused.json()["message"]
    held = call("GET", admin, "")
    assert held.status_code == 200 and [m["message_id"] for m in held.json()["dead_letters"]] == [lost]
    replayed = call("POST", admin, "/replay")
    assert replayed.status_code == 200 and [m["message_id"] for m in replayed.json()["dead_letters"]] == [lost]
    cloud.handled('consumer_function["scheduler"]', replayed.json()["dead_letters"][0]["replayed_as"])
    assert call("GET", admin, "").json()["dead_letters"] == []
    not_its_topic = call("POST", admin, "/replay", topics.RECONCILE)
    assert not_its_topic.status_code == 403 and "--direct" in not_its_topic.json()["message"]
    assert [m["message_id"] for m in call("GET", admin, "", topics.RECONCILE).json()["dead_letters"]] == [tick]
    from shared.adapters.dead_letters import DeadLetters  # what `replay reconcile --direct` runs, as the operator

    (direct,) = DeadLetters(cloud.project).replay(topics.RECONCILE, 10)
    assert direct.message_id == tick
    cloud.handled('consumer_function["reconciler"]', direct.replayed_as)


# ----------------------------------------------------------------------------- nothing lost, nothing failed


def test_each_deployable_publishes_only_where_terraform_lets_its_identity(cloud, large_run):
    """The Pub/Sub emulator has no IAM: in the cloud a publish without the grant is PermissionDenied. What
    each process published (its `published` log lines) must be granted to the identity it runs as."""
    published = {}
    for module, process in cloud.rehearsal.processes.items():
        entries = [json.loads(line) for line in process.text().splitlines() if line.startswith("{")]
        published[module] = {e["topic"] for e in entries if e.get("message") == "published"}
    # The scheduler released the slot's run above: the check sees real publishes, it is not vacuous.
    assert "run-submit" in published['consumer_function["scheduler"]'], published
    refused = {module: sorted(topics_ - topics_published_by(cloud.deployment, cloud.deployment.deployable(module)
                                                            .service_account))
               for module, topics_ in published.items()}
    assert {m: t for m, t in refused.items() if t} == {}, f"published without a grant: {refused}"


def unrecovered_failures(text: str) -> list[str]:
    """What a process's log shows went wrong and stayed wrong. A TransientError is the one failure a consumer
    hands back to Pub/Sub on purpose (shared/consumer.py re-raises it; the framework logs its traceback and
    answers 500, and the message is redelivered), so it counts only when that message was never handled
    afterwards. Any other traceback counts."""
    lines = text.splitlines()
    failures = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            # The exception's own line: the first after the frames that is not indented. In a chain ("The
            # above exception was the direct cause...") only the last traceback says what was raised.
            after = [j for j in range(i + 1, len(lines)) if lines[j] and not lines[j][0].isspace()]
            last = lines[after[0]] if after else ""
            chained = len(after) > 1 and lines[after[1]].startswith(("The above exception", "During handling"))
            if not chained and "TransientError" not in last:
                failures.append(f"traceback ending {last!r}")
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    handled = {e["message_id"] for e in entries if e.get("message") == "message handled" and e.get("message_id")}
    for e in entries:
        # Only a Pub/Sub message is redelivered; an HTTP caller's 503 stays an error here.
        if e.get("message", "").startswith("transient failure") and e.get("message_id") not in handled:
            failures.append(f"transient failure never recovered: {e}")
    return failures


def test_unrecovered_failures_tells_a_redelivered_transient_failure_from_a_lost_one():
    transient = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    raise TransientError\n"
                 "shared.errors.TransientError: deadline exceeded\n")
    warned = json.dumps({"message": "transient failure; the message will be redelivered", "message_id": "7"})
    assert unrecovered_failures(f"{warned}\n{transient}" + json.dumps({"message": "message handled",
                                                                        "message_id": "7"})) == []
    assert unrecovered_failures(f"{warned}\n{transient}") == [f"transient failure never recovered: {json.loads(warned)}"]
    assert unrecovered_failures("Traceback (most recent call last):\n  File \"x.py\"\nKeyError: 'run_id'\n") == [
        "traceback ending \"KeyError: 'run_id'\""]
    cause = "Traceback (most recent call last):\n  File \"y.py\"\ngoogle.api_core.exceptions.DeadlineExceeded: 504\n"
    chain = f"{cause}\nThe above exception was the direct cause of the following exception:\n\n{transient}"
    assert unrecovered_failures(chain + json.dumps({"message": "message handled", "message_id": "7"})) == []
    assert unrecovered_failures(json.dumps({"message": "transient failure", "path": "/api/x"})) != []


# How long a message handed back with a transient failure may take to come back: Pub/Sub's backoff grows
# from the subscription's 10 s (terraform/modules/push_subscription), and the emulator's second redelivery
# here came about 100 s after the first failure (2026-12-07, the duplicate of a scheduled run's submit).
REDELIVERY_WAIT_S = 300


def test_nothing_was_dead_lettered_or_answered_with_an_error(cloud, large_run):
    import time

    assert cloud.dead_lettered() == {t: 0 for t in topics.ALL}
    deadline = time.monotonic() + REDELIVERY_WAIT_S
    while True:
        failing = {module: failures for module, process in cloud.rehearsal.processes.items()
                   if (failures := unrecovered_failures(process.text()))}
        # Only a message still waiting for its redelivery is worth waiting on; anything else fails now.
        waiting = all(f.startswith("transient failure never recovered")
                      for failures in failing.values() for f in failures)
        if not failing or not waiting or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert failing == {}, "\n".join(f"{m}:\n{cloud.rehearsal.processes[m].text()[-3000:]}" for m in failing)
    assert cloud.dead_lettered() == {t: 0 for t in topics.ALL}


def test_the_web_entrance_serves_the_page_from_its_zip_and_refuses_unverified_calls(cloud):
    """A7: the page is reachable from the deployed zip, its assets too; every /api call still needs an
    identity the code verified, and the page's origin is the API's (no CORS grant to any other)."""
    import re

    from tests.identity_tokens import delivered_token

    web = cloud.rehearsal.processes["fn_web"]
    page = requests.get(web.url + "/training", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assets = re.findall(r'(?:src|href)="(/training/assets/[^"]+)"', page.text)
    assert assets
    for asset in assets:
        assert requests.get(web.url + asset, timeout=30).status_code == 200, asset
    config = requests.get(web.url + "/training/config.json", timeout=30).json()
    assert config["authMode"] == "firebase" and "devToken" not in config and not config["authEmulatorHost"]
    assert config["firebase"]["apiKey"] == cloud.deployment.functions["fn_web"].env["TRAINYARD_FIREBASE_API_KEY"]
    refused = requests.get(web.url + "/api/training-runs", timeout=30, headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 401 and "Access-Control-Allow-Origin" not in refused.headers
    # A Google ID token's claims (what IAM would have checked on the API's URL) open nothing here.
    google = requests.get(web.url + "/api/training-runs", timeout=30,
                          headers={"Authorization": f"Bearer {delivered_token('ana@example.com')}"})
    assert google.status_code == 401 and "Firebase ID tokens only" in google.json()["message"]
