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

from shared import topics as shared_topics
from tests.unit.terraform_support import hcl
from tests.unit.terraform_support.hcl import REPO_ROOT, TF_ROOT

# What each workload's code calls (docs: ../shared/ARCHITECTURE.md, issue 7). The Terraform must
# grant exactly this: a missing grant breaks the code, an extra one breaks least privilege.
EXPECTED_GRANTS = {
    "api": {
        "project": ["roles/datastore.user", "roles/cloudscheduler.admin", "roles/cloudquotas.viewer",
                    "roles/aiplatform.viewer", "roles/logging.viewer", "roles/monitoring.viewer"],
        "topics": ["run-submit", "run-commands", "schedule-trigger"],
        "buckets": {"artifacts": ["artifacts_read_delete"]},
    },
    "submitter": {
        "project": ["roles/datastore.user", "roles/aiplatform.user"],
        "buckets": {"artifacts": ["roles/storage.objectUser"], "pipeline_root": ["roles/storage.objectUser"]},
        "repository_reader": True,
        "act_as": ["pipeline"],
    },
    "pipeline_events": {
        "project": ["roles/datastore.user", "roles/aiplatform.viewer"],
        "topics": ["run-submit"],
        "buckets": {"artifacts": ["roles/storage.objectViewer"]},
    },
    "scheduler": {
        "project": ["roles/datastore.user"],
        "topics": ["run-submit"],
    },
    "run_commands": {
        "project": ["roles/datastore.user", "roles/aiplatform.user"],
        "buckets": {"artifacts": ["roles/storage.objectUser"]},
        "act_as": ["pipeline"],
    },
    "pipeline": {
        "project": ["roles/aiplatform.user", "roles/bigquery.dataViewer", "roles/bigquery.jobUser",
                    "roles/dataflow.worker", "roles/dataflow.developer"],
        "topics": ["training-progress"],
        "buckets": {"artifacts": ["roles/storage.objectUser"], "pipeline_root": ["roles/storage.objectUser"]},
        "repository_reader": True,
        "act_as": ["pipeline"],
    },
}
EXPECTED_ACT_AS = {sa: g["act_as"] for sa, g in EXPECTED_GRANTS.items() if g.get("act_as")}

# module => service account it runs as
EXPECTED_IDENTITIES = {
    "fn_api": "api",
    "fn_pipeline_events": "pipeline_events",
    "fn_training_progress": "pipeline_events",
    "fn_scheduler": "scheduler",
    "run_submitter": "submitter",
    "run_commands": "run_commands",
}

# module => (topic, entry point or None for Cloud Run)
EXPECTED_TRIGGERS = {
    "fn_pipeline_events": ("pipeline-events", "on_pipeline_event"),
    "fn_training_progress": ("training-progress", "on_training_progress"),
    "fn_scheduler": ("schedule-trigger", "on_schedule_trigger"),
    "run_submitter": ("run-submit", None),
    "run_commands": ("run-commands", None),
}

EXPECTED_INDEXES = [
    ("training_runs", [("status", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("model_type", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("dataset_id", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("training_runs", [("schedule_id", "ASCENDING"), ("created_at", "DESCENDING")]),
    ("experiments", [("model_type", "ASCENDING"), ("metrics.recall_at_100", "DESCENDING")]),
    ("experiments", [("model_type", "ASCENDING"), ("metrics.test_rmse", "ASCENDING")]),
    ("training_schedules", [("status", "ASCENDING"), ("next_run_at", "ASCENDING")]),
]


def _run_list_indexes():
    """GET /api/training-runs combines its filters, newest first: one index per combination."""
    from itertools import combinations

    from shared.services.runs import LIST_FILTERS

    return [("training_runs", [(field, "ASCENDING") for field in combo] + [("created_at", "DESCENDING")])
            for n in range(2, len(LIST_FILTERS) + 1) for combo in combinations(LIST_FILTERS, n)]


EXPECTED_INDEXES += _run_list_indexes()

# Every checkov waiver must be one of these (and carry its reason next to the resource).
ALLOWED_WAIVERS = {"CKV_GCP_62", "CKV_GCP_83", "CKV_GCP_84", "CKV_GCP_124"}

READABLE_COLLECTIONS = ["training_runs", "training_schedules", "experiments", "datasets",
                        "feature_configs", "model_configs"]


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


def test_provider_versions_pinned(root):
    req = root["terraform"][0]["required_providers"][0]
    for name in ("google", "google-beta", "archive"):
        version = req[name]["version"]
        assert re.search(r"<\s*\d", version), f"{name} has no upper bound: {version}"


# ----------------------------------------------------------------------------- wiring


def test_topics_match_shared_topics(root):
    _assert_none(hcl.check_pubsub_wiring(root, shared_topics.ALL))


def test_triggers_use_expected_topics_and_entry_points(root):
    mods = hcl.modules(root)
    for name, (topic, entry) in EXPECTED_TRIGGERS.items():
        assert hcl.topic_key(mods[name].get("trigger_topic_id")) == topic, name
        if entry:
            assert mods[name]["entry_point"] == entry, name
    assert mods["fn_api"]["entry_point"] == "handle"
    assert "trigger_topic_id" not in mods["fn_api"]


def test_every_subscription_and_trigger_has_retry_and_dead_letter(confs):
    _assert_none(hcl.check_subscriptions_and_triggers(confs))
    _assert_none(hcl.check_dead_letter_command(confs["modules/eventarc_dead_letter"]))
    _assert_none(hcl.check_dlq_module(confs["modules/pubsub_topic_with_dlq"]))


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
    env = hcl.locals_(root)["common_env"]
    assert hcl.sa_key(env["TRAINYARD_PIPELINE_SERVICE_ACCOUNT"]) == "pipeline"


def test_trigger_identities_only_invoke_their_target(confs):
    run = hcl.resources(confs["modules/run_consumer"])
    inv = run[("google_cloud_run_v2_service_iam_member", "trigger_invoker")]
    assert inv["role"] == "roles/run.invoker" and "google_cloud_run_v2_service.this.name" in inv["name"]
    fn = hcl.resources(confs["modules/light_function"])
    inv = fn[("google_cloud_run_v2_service_iam_member", "invoker")]
    assert inv["role"] == "roles/run.invoker" and "google_cloudfunctions2_function.this.name" in inv["name"]
    # one trigger identity per trigger
    keys = [hcl.sa_key(b.get("trigger_service_account_email"), "trigger")
            for b in hcl.modules(confs["root"]).values() if "trigger_service_account_email" in b]
    assert len(keys) == len(set(keys)) == len(EXPECTED_TRIGGERS)


def test_ingress_only_api_is_public_and_authenticated(confs):
    _assert_none(hcl.check_ingress(confs["root"], confs["modules/light_function"], {"fn_api"}))
    for where, conf in confs.items():
        for (rtype, name), body in hcl.resources(conf).items():
            for member in hcl.strings([body.get("member", ""), body.get("members", [])]):
                assert not re.search(r"\ballUsers\b|allAuthenticatedUsers", member), f"{where}: {rtype}.{name} is public"
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


def test_firestore_rules_read_only_for_org_users():
    rules = (TF_ROOT / "firestore.rules").read_text()
    assert "${org_domain_regex}" in rules and "email_verified == true" in rules
    for coll in READABLE_COLLECTIONS:
        m = re.search(rf"match /{coll}/\{{\w+\}} \{{(.*?)\n    \}}", rules, re.S)
        assert m, f"no rule for {coll}"
        assert "allow read: if isOrgUser();" in m.group(1), coll
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
}
resource "google_eventarc_trigger" "orphan" {
  name     = "t"
  location = "europe-west4"
}
resource "google_cloudfunctions2_function" "fn" {
  name = "f"
  event_trigger {
    event_type   = "google.cloud.pubsub.topic.v1.messagePublished"
    retry_policy = "RETRY_POLICY_DO_NOT_RETRY"
  }
}
'''


def test_negative_missing_dead_letter_and_retry_policies():
    problems = hcl.check_subscriptions_and_triggers({"snippet": hcl.parse_text(BROKEN_SUBSCRIPTION)})
    text = "\n".join(problems)
    assert "subscription no_dlq has no dead_letter_policy" in text
    assert "subscription no_retry has no retry_policy" in text
    assert "eventarc trigger orphan has no dead-letter module" in text
    assert "function fn trigger retry_policy is not RETRY_POLICY_RETRY" in text
    assert "function fn trigger has no dead-letter module" in text


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


def test_negative_trigger_on_unknown_topic_and_wrong_dead_letter():
    snippet = hcl.parse_text('''
locals {
  topics = ["run-submit"]
}
module "topic" {
  source   = "./modules/pubsub_topic_with_dlq"
  for_each = toset(local.topics)
}
module "fn" {
  source                        = "./modules/light_function"
  trigger_topic_id              = module.topic["run-submitt"].topic_id
  dead_letter_topic_id          = module.topic["run-submit"].dead_letter_topic_id
  trigger_service_account_email = google_service_account.trigger["x"].email
}
module "svc" {
  source = "./modules/run_consumer"
}
''')
    text = "\n".join(hcl.check_pubsub_wiring(snippet, ["run-submit"]))
    assert "is not a declared topic" in text
    assert "is not run-submitt's dead-letter topic" in text
    assert "module.svc: Cloud Run consumer without trigger_topic_id" in text
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
  trigger_topic_id = module.topic["run-submit"].topic_id
}
''')
    text = "\n".join(hcl.check_ingress(root, light, {"fn_api"}))
    assert "ingress_settings default is 'ALLOW_ALL'" in text and "module.fn_events: ingress 'ALLOW_ALL'" in text
