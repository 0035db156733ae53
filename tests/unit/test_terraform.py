"""Static tests of terraform/: formatting, the wiring (topics, triggers, dead letters, sink, IAM,
Firestore) parsed with python-hcl2, and checkov with zero unwaived failures. The google provider
cannot be downloaded here, so nothing calls `terraform init/validate`."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from shared.contract import topics as shared_topics
from shared.contract import labels
from tests.rehearsal import terraform_model
from tests.unit.terraform_support import hcl
from tests.unit.terraform_support.hcl import REPO_ROOT, TF_ROOT


def planned() -> terraform_model.Instance:
    """terraform/ evaluated with the example's variables, as a plan would."""
    return terraform_model.load(TF_ROOT, TF_ROOT / "examples/minimal/minimal.tfvars")

# What each workload's code calls (docs: ../shared/ARCHITECTURE.md, issue 7). The Terraform must
# grant exactly this: a missing grant breaks the code, an extra one breaks least privilege.
EXPECTED_GRANTS = {
    "api": {
        "project": ["roles/datastore.user", "custom:schedule_manager", "roles/cloudquotas.viewer",
                    "roles/aiplatform.viewer", "roles/logging.viewer", "roles/monitoring.viewer"],
        # its own publishes and its schedule jobs' topic; a dead-letter replay only onto those (topics.API_PUBLISHES)
        "topics": ["run-submit", "run-commands", "schedule-trigger"],
        "buckets": {"artifacts": ["artifacts_read_delete"]},
    },
    "submitter": {
        "project": ["roles/datastore.user", "roles/aiplatform.user"],
        "topics": ["run-submit", "run-commands"],  # what follows a failed submit: a released run, notifications
        "buckets": {"artifacts": ["roles/storage.objectUser"], "pipeline_root": ["roles/storage.objectUser"]},
        "repository_reader": True,
        "act_as": ["pipeline"],
    },
    "pipeline_events": {
        "project": ["roles/datastore.user", "roles/aiplatform.viewer", "custom:schedule_pauser"],
        "topics": ["run-submit", "run-commands"],  # released runs, deploy after training, notifications
        "buckets": {"artifacts": ["roles/storage.objectViewer"]},
    },
    "scheduler": {
        "project": ["roles/datastore.user", "custom:schedule_deleter"],
        "topics": ["run-submit"],
    },
    "run_commands": {
        "project": ["roles/datastore.user", "roles/aiplatform.user", "roles/monitoring.viewer"],  # + a canary's watch
        "topics": ["run-submit", "run-commands"],  # what follows a cancel: a released run, notifications
        "buckets": {"artifacts": ["roles/storage.objectUser"]},
        "act_as": ["pipeline"],
    },
    "pipeline": {
        # bigquery.user: Beam's BigQuery read creates and deletes a temporary dataset; the users' tables
        # are read per dataset (data_bigquery_datasets), not project-wide.
        "project": ["roles/aiplatform.user", "roles/bigquery.user", "roles/dataflow.worker", "roles/dataflow.developer"],
        "topics": ["training-progress"],
        "buckets": {"artifacts": ["roles/storage.objectUser"], "pipeline_root": ["roles/storage.objectUser"]},
        "repository_reader": True,
        "act_as": ["pipeline"],
    },
    "build": {
        # what a gen2 build as a custom account needs (cloud.google.com/run/docs/configuring/services/build-service-account)
        "project": ["roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"],
    },
}
EXPECTED_ACT_AS = {sa: g["act_as"] for sa, g in EXPECTED_GRANTS.items() if g.get("act_as")}

# module => service account it runs as
EXPECTED_IDENTITIES = {
    "fn_api": "api",
    "fn_web": "api",  # the dashboard's public entrance: the API's code, account and grants
}

# consumer => (topic, module deploying it (one instance per consumer), entry point, service account)
EXPECTED_CONSUMERS = {
    "pipeline_events": ("pipeline-events", "consumer_function", "on_pipeline_event", "pipeline_events"),
    "training_progress": ("training-progress", "consumer_function", "on_training_progress", "pipeline_events"),
    "scheduler": ("schedule-trigger", "consumer_function", "on_schedule_trigger", "scheduler"),
    "submitter": ("run-submit", "consumer_service", "on_run_submit", "submitter"),
    "run_commands": ("run-commands", "consumer_service", "on_run_command", "run_commands"),
    "reconciler": ("reconcile", "consumer_function", "on_reconcile", "pipeline_events"),
    "data_triggers": ("data-landed", "consumer_function", "on_data_landed", "scheduler"),
}


def _entry_point(instance) -> str:
    """A consumer instance's handler: the function's entry point, or the service's --target."""
    if "entry_point" in instance.inputs:
        return instance.var("entry_point")
    return next(a.split("=", 1)[1] for a in instance.var("command") if a.startswith("--target="))


EXPECTED_INDEXES = [
    ("training_runs", [("status", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("model_type", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("dataset_id", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("schedule_id", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("deployment_status", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("deleted", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("team", "ASCENDING"), ("created_at", "DESCENDING")]),  # the dashboard's listeners
    # GET /api/endpoints: the caller's teams' runs on an endpoint (shared/services/endpoint_views.py)
    ("training_runs", [("team", "ASCENDING"), ("deployment_status", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("experiments", [("model_type", "ASCENDING"), ("metrics.recall_at_100", "DESCENDING")]),
    ("experiments", [("model_type", "ASCENDING"), ("metrics.test_rmse", "ASCENDING")]),
    ("training_schedules", [("status", "ASCENDING"), ("next_run_at", "ASCENDING")]),
    # the paged lists (shared/services/listing.py): the run search, a schedule's runs, schedules by
    # status, experiments by model type
    ("training_runs", [("search_tokens", "CONTAINS"), ("created_at", "DESCENDING")]),
    ("training_runs", [("team", "ASCENDING"), ("search_tokens", "CONTAINS"), ("created_at", "DESCENDING")]),
    ("training_runs", [("team", "ASCENDING"), ("schedule_id", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_schedules", [("team", "ASCENDING"), ("status", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("experiments", [("team", "ASCENDING"), ("model_type", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("model_configs", [("team", "ASCENDING"), ("model_type", "ASCENDING"), ("created_at", "DESCENDING")]),
]


def _run_list_indexes():
    """GET /api/training-runs combines its filters, newest first: one index per combination."""
    from itertools import combinations

    from shared.services.listing import LIST_FILTERS

    return [("training_runs", [(field, "ASCENDING") for field in combo] + [("created_at", "DESCENDING")])
            for n in range(2, len(LIST_FILTERS) + 1) for combo in combinations(LIST_FILTERS, n)]


EXPECTED_INDEXES += _run_list_indexes()


def _team_list_indexes():
    """Lists show the caller's teams (shared/services/access.team_filter): `team in [...]` first."""
    from itertools import combinations

    from shared.services.listing import LIST_FILTERS

    team = [("team", "ASCENDING")]
    runs_ = [("training_runs", team + [(field, "ASCENDING") for field in combo] + [("created_at", "DESCENDING")])
             for n in range(0, len(LIST_FILTERS) + 1) for combo in combinations(LIST_FILTERS, n)]
    top = [("experiments", team + [("model_type", "ASCENDING"), ("metrics.recall_at_100", "DESCENDING")]),
           ("experiments", team + [("model_type", "ASCENDING"), ("metrics.test_rmse", "ASCENDING")])]
    newest = [(kind, team + [("created_at", "DESCENDING")]) for kind in READABLE_COLLECTIONS if kind != "training_runs"]
    return runs_ + top + newest



# Every checkov waiver must be one of these (and carry its reason next to the resource).
# CKV2_GCP_26: the TensorBoard instance keeps Google-managed encryption like the artifacts bucket (terraform/tensorboard.tf).
ALLOWED_WAIVERS = {"CKV_GCP_62", "CKV_GCP_83", "CKV_GCP_84", "CKV_GCP_124", "CKV2_GCP_26"}

READABLE_COLLECTIONS = ["training_runs", "training_schedules", "experiments", "datasets",
                        "feature_configs", "model_configs"]

EXPECTED_INDEXES += _team_list_indexes()


@pytest.fixture(scope="module")
def confs() -> dict[str, dict]:
    out = {}
    for d in hcl.module_dirs():
        key = "root" if d == TF_ROOT else str(d.relative_to(TF_ROOT))
        out[key] = hcl.load_dir(d)
    return out


@pytest.fixture(scope="module")
def root(confs) -> dict:
    return confs["root"]


def _assert_none(problems: list[str]) -> None:
    assert problems == [], "\n".join(problems)


# ----------------------------------------------------------------------------- formatting


def test_terraform_fmt_check():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not installed: cannot run `terraform fmt -check`")
    proc = subprocess.run([terraform, "fmt", "-check", "-recursive", "-diff", str(TF_ROOT)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"terraform fmt would change files:\n{proc.stdout}{proc.stderr}"


def test_conventional_files_exist():
    for d in hcl.module_dirs():
        expected = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
        missing = [f for f in expected if not (d / f).exists()]
        assert not missing, f"{d}: missing {missing}"
    assert (TF_ROOT / "examples/minimal/minimal.tfvars").exists()


def test_provider_versions_pinned(confs):
    """An upper bound everywhere; google >= 6.13, the first to know service-account e-mails while
    planning (CHANGELOG 6.13.0, #20510) — the push identities' invoker grants need them."""
    for where, conf in confs.items():
        for block in conf.get("terraform", []):
            for req in block.get("required_providers", []):
                for name, spec in req.items():
                    version = spec["version"]
                    assert re.search(r"<\s*\d", version), f"{where}: {name} has no upper bound: {version}"
                    if name in ("google", "google-beta"):
                        floor = re.search(r">=\s*(\d+)\.(\d+)", version)
                        assert floor and (int(floor[1]), int(floor[2])) >= (6, 13), f"{where}: {name} {version}"


# ----------------------------------------------------------------------------- wiring


def test_topics_match_shared_topics(root):
    plan = planned()
    _assert_none(hcl.check_pubsub_wiring(root, shared_topics.ALL, plan.local("consumers"), plan.local("consumer_urls")))


def test_consumers_use_expected_topics_and_entry_points(root):
    plan = planned()
    consumers, urls = plan.local("consumers"), plan.local("consumer_urls")
    assert set(consumers) == set(EXPECTED_CONSUMERS)
    for name, (topic, module, entry, _) in EXPECTED_CONSUMERS.items():
        instance = plan.child(module, name)
        assert consumers[name]["topic"] == topic, name
        assert urls[name] == instance.output("uri"), name
        assert _entry_point(instance) == entry, name
    assert hcl.modules(root)["fn_api"]["entry_point"] == "handle"


def test_every_subscription_is_owned_by_terraform_with_retry_and_dead_letter(confs):
    _assert_none(hcl.check_subscriptions_and_triggers(confs))
    _assert_none(hcl.check_dlq_module(confs["modules/pubsub_topic_with_dlq"]))


def test_ack_deadlines_cover_each_consumers_handling(root):
    """B1: Eventarc-made subscriptions kept a 10 s ack deadline; the submitter compiles for longer."""
    plan = planned()
    consumers = plan.local("consumers")
    _assert_none(hcl.check_ack_deadlines(root, consumers))
    assert consumers["submitter"]["ack_deadline_seconds"] == 600
    assert consumers["run_commands"]["ack_deadline_seconds"] == 600
    for name, (_, module, _, _) in EXPECTED_CONSUMERS.items():  # the request timeout each instance gets
        instance = plan.child(module, name)
        timeout = instance.var("timeout_seconds") if module == "consumer_function" else instance.var("timeout")
        assert str(timeout).removesuffix("s") == str(consumers[name]["ack_deadline_seconds"]), name


def test_every_function_builds_as_the_build_account(confs):
    """A8: new projects' default build account lacks the permissions to build a function."""
    fn = hcl.resources(confs["modules/light_function"])[("google_cloudfunctions2_function", "this")]
    assert "var.build_service_account_id" in hcl.first_block(fn, "build_config").get("service_account", "")
    for name, body in hcl.modules(confs["root"]).items():
        if "light_function" in body.get("source", ""):
            assert "local.build_sa_id" in body.get("build_service_account_id", ""), name
    assert 'google_service_account.sa["build"].id' in hcl.locals_(confs["root"])["build_sa_id"].replace('\\"', '"')


def test_dataflow_workers_have_a_network_of_their_own(root):
    """A9: no `default` VPC in many organisations; workers need Private Google Access and their ports."""
    res = hcl.resources(root)
    net = res[("google_compute_network", "dataflow")]
    sub = res[("google_compute_subnetwork", "dataflow")]
    fw = res[("google_compute_firewall", "dataflow_workers")]
    assert net["auto_create_subnetworks"] is False
    assert sub["private_ip_google_access"] is True
    assert fw["source_tags"] == ["dataflow"] and fw["target_tags"] == ["dataflow"]
    assert hcl.first_block(fw, "allow")["ports"] == ["12345-12346"]
    assert planned().local("environment")["submitter"]["TRAINYARD_DATAFLOW_SUBNETWORK"] == \
        "regions/europe-west4/subnetworks/trainyard-dataflow"


def test_schedule_jobs_are_managed_with_narrow_custom_roles(root):
    """B3/B4: pipeline_events pauses an auto-paused schedule's job, the scheduler deletes a spent
    one-time schedule's job; each holds only that (plus get), and the API no cloudscheduler.admin."""
    roles = hcl.locals_(root)["scheduler_job_roles"]
    assert sorted(roles["schedule_pauser"]["permissions"]) == ["cloudscheduler.jobs.get", "cloudscheduler.jobs.pause"]
    assert sorted(roles["schedule_deleter"]["permissions"]) == ["cloudscheduler.jobs.delete", "cloudscheduler.jobs.get"]
    assert "cloudscheduler.jobs.run" not in roles["schedule_manager"]["permissions"]
    assert not [r for roles_ in hcl.locals_(root)["project_roles"].values() for r in roles_ if "cloudscheduler.admin" in r]


def test_service_agents_are_named_from_the_project_number(root):
    """B6: google_project_service_identity can return an empty e-mail (provider issue 18649)."""
    loc = hcl.locals_(root)
    assert "data.google_project.this.number" in loc["project_number"]
    assert loc["scheduler_agent_email"] == "service-${local.project_number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
    assert loc["pubsub_agent_email"] == "service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    for where, text in ((f.name, f.read_text()) for f in TF_ROOT.rglob("*.tf") if ".terraform" not in f.parts):
        assert "google_project_service_identity.pubsub.email" not in text, where
        assert "google_project_service_identity.cloudscheduler.email" not in text, where


def test_no_primitive_roles(confs):
    _assert_none(hcl.check_no_primitive_roles(confs))


def test_service_account_user_only_where_listed(confs):
    _assert_none(hcl.check_service_account_user(confs, EXPECTED_ACT_AS))


def test_sink_routes_both_vertex_logs_and_can_publish(root):
    _assert_none(hcl.check_sink(root))


def test_service_accounts_have_the_roles_their_code_needs(root):
    _assert_none(hcl.check_grants(root, EXPECTED_GRANTS))


def test_each_workload_runs_as_its_own_service_account(root):
    _assert_none(hcl.check_workload_identities(root, EXPECTED_IDENTITIES))
    plan = planned()
    for name, (_, module, _, account) in EXPECTED_CONSUMERS.items():
        instance = plan.child(module, name)
        assert instance.var("service_account_email") == \
            f"{plan.local('service_accounts')[account]['account_id']}@my-trainyard-project.iam.gserviceaccount.com", name
        assert instance.var("environment_variables") == plan.local("environment")[account], name
    env = planned().local("environment")["submitter"]
    assert env["TRAINYARD_PIPELINE_SERVICE_ACCOUNT"] == "trainyard-pipeline@my-trainyard-project.iam.gserviceaccount.com"


def test_push_identities_only_invoke_their_consumer(confs):
    run = hcl.resources(confs["modules/run_consumer"])
    inv = run[("google_cloud_run_v2_service_iam_member", "invoker")]
    assert inv["role"] == "roles/run.invoker" and "google_cloud_run_v2_service.this.name" in inv["name"]
    fn = hcl.resources(confs["modules/light_function"])
    inv = fn[("google_cloud_run_v2_service_iam_member", "invoker")]
    assert inv["role"] == "roles/run.invoker" and "google_cloudfunctions2_function.this.name" in inv["name"]
    plan = planned()
    push_accounts = plan.local("push_accounts")
    assert set(push_accounts) == set(EXPECTED_CONSUMERS)
    for consumer, (_, module, _, _) in EXPECTED_CONSUMERS.items():
        email = f"{push_accounts[consumer]['account_id']}@my-trainyard-project.iam.gserviceaccount.com"
        assert plan.child(module, consumer).var("invokers") == {"push": f"serviceAccount:{email}"}, consumer


def test_ingress_only_the_http_entrances_are_reachable_and_only_the_verifying_one_is_public(confs):
    _assert_none(hcl.check_ingress(confs["root"], confs["modules/light_function"], set(hcl.HTTP_MODULES)))
    public = [("modules/light_function", "google_cloud_run_v2_service_iam_member", "public")]
    for where, conf in confs.items():
        for (rtype, name), body in hcl.resources(conf).items():
            for member in hcl.strings([body.get("member", ""), body.get("members", [])]):
                if re.search(r"\ballUsers\b|allAuthenticatedUsers", member):
                    assert (where, rtype, name) in public, f"{where}: {rtype}.{name} is public"
    # allUsers only behind var.public, which insists on a code that verifies every caller ...
    grant = hcl.resources(confs["modules/light_function"])[("google_cloud_run_v2_service_iam_member", "public")]
    assert "var.public" in str(grant["count"]) and 'TRAINYARD_AUTH", "") == "firebase"' in str(grant["lifecycle"])
    # ... and only the dashboard's web entrance asks for it, in that mode.
    mods = hcl.modules(confs["root"])
    assert [m for m, body in mods.items() if str(body.get("public")).lower() == "true"] == ["fn_web"]
    assert planned().child("fn_web").var("environment_variables")["TRAINYARD_AUTH"] == "firebase"
    assert planned().child("fn_api").var("environment_variables")["TRAINYARD_AUTH"] == "google"
    tfvars = (TF_ROOT / "examples/minimal/minimal.tfvars").read_text()
    assert "allUsers" not in tfvars and "allAuthenticatedUsers" not in tfvars


def test_every_variable_typed_and_described(confs):
    problems = []
    for where, conf in confs.items():
        problems += hcl.check_variables(conf, where)
    _assert_none(problems)


def test_firestore_indexes(root):
    _assert_none(hcl.check_indexes(root, EXPECTED_INDEXES))


def test_function_source_object_carries_content_hash(confs):
    _assert_none(hcl.check_source_hash(confs["modules/light_function"]))


def test_buckets_are_private_and_uniform(root):
    for (rtype, name), body in hcl.resources(root).items():
        if rtype == "google_storage_bucket":
            assert body.get("uniform_bucket_level_access") is True, name
            assert body.get("public_access_prevention") == "enforced", name
            assert hcl.first_block(body, "versioning") or body.get("lifecycle_rule"), name


def test_each_bucket_keeps_its_retention():
    """The buckets' one declaration (storage.tf local.buckets) gives each the rules it had: live objects
    deleted after `age` days where they age out, superseded versions after days_since_noncurrent_time."""
    plan = planned()
    noncurrent = plan.var("noncurrent_version_retention_days")
    want = {
        "artifacts": (False, [{"days_since_noncurrent_time": noncurrent}]),
        "pipeline_root": (False, [{"age": plan.var("pipeline_root_retention_days")},
                                  {"days_since_noncurrent_time": noncurrent}]),
        "function_source": (True, [{"age": 30}, {"days_since_noncurrent_time": 7}]),
        "build_staging": (True, [{"age": 7}, {"days_since_noncurrent_time": 1}]),
    }
    got = {}
    for key, bucket in plan.resource_instances("google_storage_bucket", "bucket").items():
        args = plan.resource("google_storage_bucket", "bucket", key).args
        assert args["uniform_bucket_level_access"] is True and args["public_access_prevention"] == "enforced", key
        assert args["versioning"] == [{"enabled": True}], key
        assert all(r["action"] == [{"type": "Delete"}] for r in args["lifecycle_rule"]), key
        got[key] = (args["force_destroy"], [r["condition"][0] for r in args["lifecycle_rule"]])
    assert got == want


def test_firestore_rules_give_each_collection_the_api_read_rule_and_no_writes():
    # Behaviour on the emulator: tests/security/test_firestore_rules.py. Here: every listened-to
    # collection is guarded by the team check, and nothing a client may write.
    rules = (TF_ROOT / "firestore.rules").read_text()
    assert "${org_domain_regex}" in rules and "email_verified == true" in rules
    assert "request.time < access().expires_at" in rules and "team in access().teams" in rules
    for coll in READABLE_COLLECTIONS:
        m = re.search(rf"match /{coll}/\{{\w+\}} \{{(.*?)\n    \}}", rules, re.S)
        assert m, f"no rule for {coll}"
        assert "allow read: if mayView(" in m.group(1), coll
    allows = re.findall(r"allow ([\w, ]+): if ([^;]+);", rules)
    for ops, cond in allows:
        if "write" in ops or "create" in ops or "update" in ops or "delete" in ops:
            assert cond.strip() == "false", f"clients may write: allow {ops}: if {cond}"
    assert re.search(r"match /\{document=\*\*\} \{\s*allow read, write: if false;", rules)


# ----------------------------------------------------------------------------- checkov


def _waivers() -> list[tuple[str, str, str]]:
    out = []
    for f in TF_ROOT.rglob("*.tf"):
        if ".terraform" in f.parts:
            continue
        for m in re.finditer(r"checkov:skip=(CKV2?_\w+)(?::(.*))?", f.read_text()):
            out.append((str(f.relative_to(TF_ROOT)), m.group(1), (m.group(2) or "").strip()))
    return out


def test_checkov_waivers_are_known_and_explained():
    waivers = _waivers()
    assert waivers, "expected the documented waivers"
    for where, check, reason in waivers:
        assert check in ALLOWED_WAIVERS, f"{where}: unreviewed waiver {check}"
        assert len(reason) >= 30, f"{where}: waiver {check} needs a reason"


def test_checkov_has_no_failed_checks():
    checkov = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        if os.environ.get("CI"):
            pytest.fail("checkov missing: run `make tools` (scripts/setup_checkov.sh)")
        pytest.skip("checkov not installed: run `make tools` (scripts/setup_checkov.sh)")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
               LOG_LEVEL="ERROR")
    env.pop("BC_API_KEY", None)
    proc = subprocess.run(
        [str(checkov), "-d", str(TF_ROOT), "--framework", "terraform", "--skip-download",
         "--download-external-modules", "false", "-o", "json"],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO_ROOT,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report JSON (rc={proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 0, "checkov passed no check: did it scan anything?"
    assert not failed, "checkov failures (fix, or waive next to the resource with a reason):\n" + "\n".join(
        f"{c['check_id']} {c['resource']} {c.get('file_path')}:{c.get('file_line_range')}" for c in failed)


# ----------------------------------------------------------------------------- negative tests
# The checkers must reject deliberately broken Terraform.

BROKEN_SUBSCRIPTION = '''
resource "google_pubsub_subscription" "no_dlq" {
  name  = "x"
  topic = google_pubsub_topic.this.id
  retry_policy {
    minimum_backoff = "10s"
  }
}
resource "google_pubsub_subscription" "no_retry" {
  name  = "y"
  topic = google_pubsub_topic.this.id
  dead_letter_policy {
    dead_letter_topic = google_pubsub_topic.dead_letter.id
  }
  push_config {
    push_endpoint = "https://x.run.app"
  }
}
resource "google_eventarc_trigger" "orphan" {
  name     = "t"
  location = "europe-west4"
}
resource "google_cloudfunctions2_function" "fn" {
  name = "f"
  event_trigger {
    event_type   = "google.cloud.pubsub.topic.v1.messagePublished"
    retry_policy = "RETRY_POLICY_RETRY"
  }
}
'''


def test_negative_missing_dead_letter_and_retry_policies():
    problems = hcl.check_subscriptions_and_triggers({"snippet": hcl.parse_text(BROKEN_SUBSCRIPTION)})
    text = "\n".join(problems)
    assert "subscription no_dlq has no dead_letter_policy" in text
    assert "subscription no_retry has no retry_policy" in text
    assert "push subscription no_retry has no oidc_token" in text
    assert "subscription no_retry: the Pub/Sub agent cannot dead-letter from it" in text
    assert "eventarc trigger orphan: its subscription is out of Terraform's reach" in text
    assert "function fn has an event_trigger" in text


def test_negative_ack_deadline_shorter_than_the_handling():
    snippet = hcl.parse_text('''
locals {
  consumers     = { submitter = { topic = "run-submit", ack_deadline_seconds = 10 } }
  consumer_urls = { submitter = module.run_submitter.uri }
}
module "run_submitter" {
  source  = "./modules/run_consumer"
  timeout = "600s"
}
''')
    text = "\n".join(hcl.check_ack_deadlines(snippet))
    assert "the request timeout '600s' is not its ack deadline" in text
    per_consumer = hcl.parse_text('''
module "consumer_service" {
  source   = "./modules/run_consumer"
  for_each = local.consumers
  timeout  = "600s"
}
''')
    text = "\n".join(hcl.check_ack_deadlines(per_consumer, {}))
    assert "module.consumer_service: the request timeout '600s' is not its consumer's ack deadline" in text


def test_negative_primitive_role_and_stray_service_account_user():
    snippet = hcl.parse_text('''
resource "google_project_iam_member" "bad" {
  project = "p"
  role    = "roles/editor"
  member  = "serviceAccount:x@p.iam.gserviceaccount.com"
}
resource "google_project_iam_member" "act" {
  project = "p"
  role    = "roles/iam.serviceAccountUser"
  member  = "serviceAccount:x@p.iam.gserviceaccount.com"
}
''')
    assert any("roles/editor" in p for p in hcl.check_no_primitive_roles({"snippet": snippet}))
    problems = hcl.check_service_account_user({"root": snippet}, EXPECTED_ACT_AS)
    assert any("google_project_iam_member.act" in p for p in problems)
    assert any("act_as missing" in p for p in problems)
    # roles/viewer is primitive, roles/aiplatform.viewer is not
    ok = hcl.parse_text('resource "x" "y" {\n  role = "roles/aiplatform.viewer"\n}\n')
    assert hcl.check_no_primitive_roles({"ok": ok}) == []


def test_negative_consumer_on_unknown_topic_and_unwired_push():
    snippet = hcl.parse_text('''
locals {
  topics        = ["run-submit"]
  consumers     = { submitter = { topic = "run-submitt", ack_deadline_seconds = 600 } }
  consumer_urls = { submitter = module.run_submitter.uri }
}
module "topic" {
  source   = "./modules/pubsub_topic_with_dlq"
  for_each = toset(local.topics)
}
module "push" {
  source                 = "./modules/push_subscription"
  for_each               = local.consumers
  topic_name             = module.topic[each.value.topic].topic_name
  dead_letter_topic_name = module.topic["run-submit"].dead_letter_topic_name
}
module "run_submitter" {
  source = "./modules/run_consumer"
}
module "svc" {
  source = "./modules/run_consumer"
}
''')
    text = "\n".join(hcl.check_pubsub_wiring(snippet, ["run-submit"]))
    assert "topic 'run-submitt' is not a declared topic" in text
    assert "module.push: dead_letter_topic_name" in text
    assert "module.push: push_service_account_email" in text
    assert "module.svc: no push subscription delivers to it" in text
    assert "max_delivery_attempts not set" in text


def test_negative_sink_missing_task_events_and_writer_grant():
    snippet = hcl.parse_text('''
resource "google_logging_project_sink" "s" {
  name                   = "s"
  destination            = "pubsub.googleapis.com/${module.topic["pipeline-events"].topic_id}"
  unique_writer_identity = true
  filter                 = "resource.type=\\"aiplatform.googleapis.com/PipelineJob\\" AND logName=\\"projects/${var.project_id}/logs/aiplatform.googleapis.com%2Fpipeline_job_events\\""
}
''')
    text = "\n".join(hcl.check_sink(snippet))
    assert "misses aiplatform.googleapis.com%2Fpipeline_job_task_events" in text
    assert "misses aiplatform.googleapis.com%2Fpipeline_job_events" not in text
    assert "PipelineJob resource" not in text
    assert "writer identity cannot publish" in text


def test_negative_grants_and_identities():
    snippet = hcl.parse_text('''
locals {
  service_accounts = { api = { account_id = "a" } }
  project_roles    = { api = ["roles/datastore.user", "roles/storage.admin"] }
}
module "fn_api" {
  source                = "./modules/light_function"
  service_account_email = google_service_account.sa["ghost"].email
}
''')
    text = "\n".join(hcl.check_grants(snippet, {"api": EXPECTED_GRANTS["api"]}))
    assert "api: project grants" in text and "roles/storage.admin" in text
    assert "api: topics grants []" in text
    assert "does not iterate over local.project_role_bindings" not in text  # resource missing instead
    assert "google_project_iam_member.sa_roles missing" in text
    text = "\n".join(hcl.check_workload_identities(snippet, {"fn_api": "api"}))
    assert "runs as 'ghost', expected 'api'" in text and "'ghost' is not declared" in text


def test_negative_variables_indexes_and_source_hash():
    snippet = hcl.parse_text('''
variable "untyped" {
  description = "no type"
}
variable "undescribed" {
  type = string
}
locals {
  firestore_indexes = {
    a = { collection = "training_runs", fields = [["status", "ASCENDING"], ["created_at", "ASCENDING"]] }
  }
}
resource "google_storage_bucket_object" "src" {
  name   = "functions/${var.name}.zip"
  bucket = "b"
}
resource "google_cloudfunctions2_function" "f" {
  name = "f"
  build_config {
    source {
      storage_source {
        object = "static.zip"
      }
    }
  }
}
''')
    text = "\n".join(hcl.check_variables(snippet, "snippet"))
    assert "untyped has no type" in text and "undescribed has no description" in text
    text = "\n".join(hcl.check_indexes(snippet, EXPECTED_INDEXES[:1]))
    assert "missing Firestore index" in text and "does not iterate" in text
    text = "\n".join(hcl.check_source_hash(snippet))
    assert "carries no content hash" in text and "not built from the content-hash object" in text


def test_negative_public_event_function():
    light = hcl.parse_text('variable "ingress_settings" {\n  type = string\n  default = "ALLOW_ALL"\n}\n')
    root = hcl.parse_text('''
module "fn_events" {
  source           = "./modules/light_function"
  ingress_settings = "ALLOW_ALL"
  invokers         = { push = google_service_account.push["x"].member }
}
''')
    text = "\n".join(hcl.check_ingress(root, light, {"fn_api"}))
    assert "ingress_settings default is 'ALLOW_ALL'" in text and "module.fn_events: ingress 'ALLOW_ALL'" in text


def _sink_pattern() -> str:
    text = (TF_ROOT / "logging.tf").read_text()
    assert 'resource.labels.pipeline_job_id=~"${local.pipeline_job_id_pattern}"' in text
    return re.search(r'pipeline_job_id_pattern\s*=\s*"([^"]+)"', text).group(1)


def _every_kind_of_job_id() -> dict[str, str]:
    """A job id of each kind of run, made by the generators themselves, at a first and later attempts."""
    from datetime import datetime, timedelta, timezone

    from shared.domain import data_triggers, schedules
    from shared.services.run_builder import new_run_id
    from shared.services.scheduling import new_schedule_id

    schedule_id = new_schedule_id()
    slot = datetime(2026, 12, 6, 9, 30, tzinfo=timezone.utc)
    run_ids = {
        "manual": new_run_id(),
        "schedule slot (triggered)": schedules.slot_run_id(schedule_id, slot),
        "schedule run-now": schedules.manual_run_id(schedule_id, slot + timedelta(minutes=7, seconds=3)),
        "new data": data_triggers.run_id_for(schedule_id, data_triggers.DataEvent(
            data_triggers.GCS, "gs://b/o", "1", slot + timedelta(seconds=41))),
    }
    return {f"{kind}, attempt {attempt}": labels.job_id_for(run_id, attempt)
            for kind, run_id in run_ids.items() for attempt in (1, 2, 17)}


def test_the_log_sink_wakes_the_consumer_for_every_trainyard_job_and_no_other():
    """B9 and N8: the sink's job-id pattern is labels.JOB_ID_PATTERN; it admits the job of every kind of
    run (the scheduled and run-now ones were dropped, so they got no live progress) and nothing else's."""
    pattern = _sink_pattern()
    assert pattern == labels.JOB_ID_PATTERN
    dropped = {kind: job for kind, job in _every_kind_of_job_id().items() if not re.search(pattern, job)}
    assert dropped == {}, f"the sink drops {dropped}"
    foreign = ["my-other-pipeline-20261201", "tr-1-a1", "xtr-0123456789abcdef-a1", "tr-0123456789abcdef-a1-b",
               "tr-0123456789abcdef", "ts-0123456789ab-a1", "ts-0123456789ab-20261206-a1",
               "ts-0123456789ab-x20261206-093000-a1", "ts-0123456789ab-20261206-093000-a", "ts-0123456789abc-20261206-093000-a1",
               "training-ts-0123456789ab-20261206-093000-a1", "tr-0123456789abcdef-a1\nx"]
    assert [f for f in foreign if re.search(pattern, f)] == []
    # Cloud Logging evaluates `=~` with RE2, this test with Python's re: only the syntax both read alike
    # (no lookaround, backreference, possessive or atomic group, which RE2 refuses; no escapes).
    assert re.fullmatch(r"\^[a-z0-9\-\[\]{}()|?+]*\$", pattern) and not re.search(r"\(\?|\+\+|\*\+", pattern)


def test_the_api_admits_the_audiences_of_its_own_urls_and_of_gcloud_user_tokens():
    """A3: TRAINYARD_AUTH_AUDIENCE is set (the API refuses every token without it) to the API's URLs,
    which are known before apply, and the CLI's user-token audience."""
    plan = planned()
    project, region = plan.var("project_id"), plan.var("region")
    audience = plan.local("environment")["api"]["TRAINYARD_AUTH_AUDIENCE"].split(",")
    assert audience[:2] == [f"https://{region}-{project}.cloudfunctions.net/trainyard-api",
                            f"https://trainyard-api-{terraform_model.PROJECT_NUMBER}.{region}.run.app"]
    assert "32555940559.apps.googleusercontent.com" in audience


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def _instances(inst: terraform_model.Instance):
    """The root module and every module instance under it."""
    yield inst
    for name in inst.source.modules:
        child = inst.child(name)
        for each in child.values() if isinstance(child, dict) else child if isinstance(child, list) else [child]:
            yield from _instances(each)


def _invoker_members(plan: terraform_model.Instance) -> list[tuple[str, str]]:
    """Every member granted on a Cloud Run service or function (where allUsers could make one public;
    test_ingress_only_the_http_entrances_... keeps allUsers out of every other resource)."""
    return [(r.address, r.args["member"]) for inst in _instances(plan)
            for (rtype, name) in inst.source.resources
            if rtype in ("google_cloud_run_v2_service_iam_member", "google_cloudfunctions2_function_iam_member")
            for r in inst.resources(rtype, name)]


def test_domain_restricted_sharing_makes_the_entrance_public_without_all_users(tmp_path):
    """N13: fn_web granted allUsers unconditionally, which organisations with domain-restricted sharing
    refuse, failing the apply. With domain_restricted_sharing = true no IAM member anywhere is allUsers
    and the entrance's Cloud Run service gets its invoker IAM check disabled instead; by default the
    allUsers grant stays and nothing runs gcloud."""
    tfvars = tmp_path / "restricted.tfvars"
    tfvars.write_text((TF_ROOT / "examples/minimal/minimal.tfvars").read_text() + "domain_restricted_sharing = true\n")
    restricted, default = terraform_model.load(TF_ROOT, tfvars), planned()
    public_members = {"allUsers", "allAuthenticatedUsers"}

    def check_disabled(plan):
        web = plan.child("fn_web")
        block = web.source.resources[("terraform_data", "invoker_iam_check_disabled")]
        return [r.instance.ev.eval(block.nested("provisioner")[0].attrs["command"], r.scope).split()
                for r in web.resources("terraform_data", "invoker_iam_check_disabled")]

    assert [a for a, m in _invoker_members(restricted) if m in public_members] == []
    web_name = restricted.child("fn_web").resource("google_cloudfunctions2_function", "this").args["name"]
    assert check_disabled(restricted) == [[
        "gcloud", "run", "services", "update", web_name, f"--project={restricted.var('project_id')}",
        f"--region={restricted.var('region')}", "--no-invoker-iam-check", "--quiet"]]
    assert restricted.child("fn_api").resources("terraform_data", "invoker_iam_check_disabled") == []

    assert [a for a, m in _invoker_members(default) if m in public_members] == [
        'module.fn_web.google_cloud_run_v2_service_iam_member.public[0]']
    assert check_disabled(default) == []


def test_no_run_submit_dead_letters_while_its_claim_is_still_held():
    """Issue 15: a redelivery refused because another delivery holds the claim must come back after
    the lease ends. Every redelivery waits at least minimum_backoff, so the window after the first
    delivery is at least (max_delivery_attempts - 1) x minimum_backoff, whatever the growth; the
    lease itself outlasts the holder's request (it cannot live longer)."""
    from shared.settings import Settings

    plan = planned()
    consumers, retry = plan.local("consumers"), plan.local("retry")
    env = plan.local("environment")["submitter"]
    lease = Settings.from_environ(env).submit_lease_s
    holder_timeout = consumers["submitter"]["ack_deadline_seconds"]
    assert lease > holder_timeout
    submitter = retry["submitter"]
    window = (submitter["max_delivery_attempts"] - 1) * _seconds(submitter["minimum_backoff"])
    assert window > lease, f"run-submit gives up after >= {window:.0f} s, inside the {lease:.0f} s lease"
    assert 5 <= submitter["max_delivery_attempts"] <= 100  # Pub/Sub's bounds
    assert set(retry) == set(consumers)
    text = (TF_ROOT / "pubsub.tf").read_text()
    assert "max_delivery_attempts      = local.retry[each.key].max_delivery_attempts" in text
    assert "minimum_backoff            = local.retry[each.key].minimum_backoff" in text



def test_the_api_may_read_and_replay_every_dead_letter_hold_and_nothing_else():
    """The admin routes pull from `<topic>-dead-letter-hold` (roles/pubsub.subscriber on each hold, not
    on the project) and republish onto the topic; TRAINYARD_ADMINS comes from var.admin_emails."""
    from shared.adapters import dead_letters
    from shared.settings import Settings

    topics = shared_topics
    plan = planned()
    api_member = f"serviceAccount:trainyard-api@{plan.var('project_id')}.iam.gserviceaccount.com"
    grants = {(r.args["subscription"], r.args["role"], r.args["member"])
              for r in plan.resources("google_pubsub_subscription_iam_member", "dead_letter_readers")}
    assert grants == {(dead_letters.hold_subscription(t), "roles/pubsub.subscriber", api_member) for t in topics.ALL}
    publishers = {(r.args["topic"], r.args["member"]) for r in plan.resources("google_pubsub_topic_iam_member", "publishers")}
    assert {t for t, member in publishers if member == api_member} == set(topics.API_PUBLISHES)
    assert plan.local("environment")["api"]["TRAINYARD_ADMINS"] == "ops@example.com"  # the example's operator
    nobody = {k: v for k, v in terraform_model.read_tfvars(TF_ROOT / "examples/minimal/minimal.tfvars").items()
              if k != "admin_emails"}
    assert terraform_model.Instance(terraform_model.ModuleSource(TF_ROOT), nobody, TF_ROOT.resolve()).local(
        "environment")["api"]["TRAINYARD_ADMINS"] == ""  # by default nobody
    inputs = {**terraform_model.read_tfvars(TF_ROOT / "examples/minimal/minimal.tfvars"),
              "admin_emails": ["ops@example.com", "Ana@Example.com"]}
    admins = terraform_model.Instance(terraform_model.ModuleSource(TF_ROOT), inputs, TF_ROOT.resolve())
    env = admins.local("environment")["api"]
    assert Settings.from_environ(env).admins == {"ops@example.com", "ana@example.com"}


def test_the_submitter_knows_when_the_pipeline_root_deletes_cached_outputs():
    """Review N12: the pipeline root's Delete rule and the submitter's cache rule read one variable, so a
    retry is never served from cached outputs the bucket has deleted (shared/domain/pipeline_cache.py)."""
    from shared.settings import Settings

    plan = terraform_model.load(TF_ROOT, TF_ROOT / "examples/minimal/minimal.tfvars")
    plan.inputs["pipeline_root_retention_days"] = 30  # not the default: the two must move together
    bucket = plan.resource("google_storage_bucket", "bucket", "pipeline_root").args
    deletes = [r["condition"][0]["age"] for r in bucket["lifecycle_rule"]
               if r["action"][0]["type"] == "Delete" and "age" in r["condition"][0]]
    submitter = Settings.from_environ(plan.local("environment")["submitter"])
    assert deletes == [30] and submitter.pipeline_root_retention_days == 30


# ----------------------------------------------------------------------------- tables declared once

# Addresses an existing deployment holds from before the tables (issue 24): each must be moved to
# where its object is declared now, or the next apply would destroy and recreate it.
FORMER_ADDRESSES = [
    "module.fn_pipeline_events", "module.fn_training_progress", "module.fn_scheduler", "module.fn_reconciler",
    "module.run_submitter", "module.run_commands",
    "google_storage_bucket.artifacts", "google_storage_bucket.pipeline_root", "google_storage_bucket.function_source",
    "google_storage_bucket.build_staging",
]


def _moves(root: dict) -> dict[str, str]:
    return {m["from"].strip("${}"): m["to"].removeprefix("${").removesuffix("}") for m in root.get("moved", [])}


def _declared(plan, address: str) -> bool:
    """Whether the configuration declares this module or resource instance (module.X["k"] / TYPE.NAME["k"])."""
    m = re.fullmatch(r'(?:module\.(\w+)|(\w+)\.(\w+))(?:\["([^"]+)"\])?', address)
    module, rtype, name, key = m.groups()
    try:
        instances = plan.child(module) if module else plan.resource_instances(rtype, name)
    except KeyError:
        return False
    return key in instances if key is not None else not isinstance(instances, dict)


def test_every_former_address_is_moved_to_a_declared_one(root):
    moves, plan = _moves(root), planned()
    assert sorted(moves) == sorted(FORMER_ADDRESSES), "a moved block for each former address, and no other"
    for former, now in moves.items():
        assert not _declared(plan, former), f"{former} is still declared: the move would be refused"
        assert _declared(plan, now), f"moved {former} to {now}, which is not declared"


def test_the_moved_check_sees_a_missing_target():
    plan = planned()
    assert not _declared(plan, 'module.consumer_function["nope"]') and not _declared(plan, "module.nope")
    assert _declared(plan, 'module.consumer_service["submitter"]') and _declared(plan, "module.fn_api")
    assert _declared(plan, "google_artifact_registry_repository.images") and not _declared(plan, "google_storage_bucket.nope")
    assert _declared(plan, 'google_storage_bucket.bucket["artifacts"]') and not _declared(plan, "google_storage_bucket.bucket")
    assert _declared(plan, 'google_service_account.push["submitter"]') and not _declared(plan, "google_service_account.push")


def test_the_consumer_table_names_declared_settings_and_accounts():
    """consumers.json: each row's local port is a declared variable of the stack, its account and
    environment are a deployable's (shared/settings.py roles, iam.tf), and it runs one way or the other."""
    from shared import settings as S

    plan = planned()
    for name, row in plan.local("consumers").items():
        assert S.STACK in S.BY_NAME[row["local_port"]].readers, name
        assert row["service_account"] in S.DEPLOYABLES and row["service_account"] in plan.local("service_accounts"), name
        assert row["runs_on"] in ("function", "cloud_run"), name
        assert (REPO_ROOT / row["source"] / "main.py").exists(), name


def test_the_local_twin_starts_the_consumers_terraform_deploys():
    """scripts/stack.py starts one process per consumers.json row: the same topic, handler and ack
    deadline as Terraform's push subscription and deployment of it."""
    from scripts.stack import FUNCTIONS

    plan = planned()
    local = {f.name: (f.topics, f.source, f.target, f.ack_deadline_s) for f in FUNCTIONS if f.topics}
    cloud = {}
    for name, push in plan.child("push").items():
        _, module, _, _ = EXPECTED_CONSUMERS[name]
        instance = plan.child(module, name)
        source = (f"{instance.var('source_dir').removeprefix(str(REPO_ROOT) + '/')}/main.py" if module == "consumer_function"
                  else next(a.split("=", 1)[1] for a in instance.var("command") if a.startswith("--source=")))
        topic = push.resource("google_pubsub_subscription", "this").args["topic"].rsplit("/", 1)[-1]
        cloud[name] = ((topic,), source, _entry_point(instance), push.var("ack_deadline_seconds"))
    assert local == cloud


def test_a_vertex_tensorboard_instance_in_the_region_is_named_to_the_submitter(root):
    """The submitter hands the instance to each Trainer CustomJob (pipeline.tensorboard_upload), which
    uploads only when the instance is in the Trainer's region: the deployment's."""
    board = hcl.resources(root)[("google_vertex_ai_tensorboard", "runs")]
    assert board["region"] == "${var.region}" and board["display_name"]
    env = hcl.locals_(root)["environment"]["submitter"]
    assert "google_vertex_ai_tensorboard.runs.name" in json.dumps(env)
    outputs = {name for block in root.get("output", []) for name in block}
    assert "vertex_tensorboard" in outputs
    # The job uploads as the pipeline account: Vertex AI and the artifacts bucket, where the files are.
    assert "roles/aiplatform.user" in hcl.locals_(root)["project_roles"]["pipeline"]
    assert "roles/storage.objectUser" in hcl.locals_(root)["bucket_roles"]["pipeline"]["artifacts"]
