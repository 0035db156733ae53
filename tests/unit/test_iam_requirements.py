"""The IAM table (terraform/iam_requirements.yaml: what the workloads and the libraries they drive
call, and the permission each call checks) against what Terraform grants: every row's permission is
in a role Terraform gives that workload where the row says, and no project role is granted without a
row. Predefined roles' permissions come from terraform/iam_roles.json (only what the rows rely on,
each with the Google page that states it), custom roles' from terraform/iam.tf. Pairs that could not
be confirmed on a Google page are kept, marked unconfirmed, and reported as warnings."""
from __future__ import annotations

import re
import subprocess
import sys
import warnings

import pytest

from tests.unit.terraform_support import hcl
from tests.unit.terraform_support.hcl import REPO_ROOT, TF_ROOT
from tests.unit.terraform_support.iam_table import rows as table
from tests.unit.terraform_support.iam_table import role_sources, rpc_methods, unconfirmed_role_permissions
from tests.unit.terraform_support.iam_table import vendored_roles as vendored

WORKLOADS = {"api", "submitter", "pipeline_events", "scheduler", "run_commands", "pipeline", "build"}
ROW_KEYS = {"workload", "api", "method", "permission", "role", "scope", "caller", "cite"}
CHECKED = "2026-12-06"


def _sa(expr: str) -> str:
    key = hcl.sa_key(expr)
    assert key, f"not a workload account: {expr}"
    return key


def terraform_grants(root: dict) -> tuple[dict[str, set[tuple[str, str]]], dict[str, set[str]]]:
    """workload => {(scope, role)} as terraform/ grants them, and the custom roles' permissions."""
    loc, res = hcl.locals_(root), hcl.resources(root)
    grants: dict[str, set[tuple[str, str]]] = {}

    def add(sa: str, scope: str, role: str) -> None:
        grants.setdefault(sa, set()).add((scope, role))

    for sa, roles in loc["project_roles"].items():
        for role in roles:
            add(sa, "project", role)
    for sa, buckets in loc["bucket_roles"].items():
        for bucket, roles in buckets.items():
            for role in roles:
                add(sa, f"bucket:{bucket}", role)
    for sa, topics in loc["topic_publishers"].items():
        for topic in topics:
            add(sa, f"topic:{topic}", "roles/pubsub.publisher")
    for sa in loc["repository_readers"]:
        add(sa, "repository:images", "roles/artifactregistry.reader")
    for sa, targets in loc["act_as"].items():
        for target in targets:
            add(sa, f"service_account:{target}", "roles/iam.serviceAccountUser")
    # The users' data (data_buckets, data_bigquery_datasets): every reader in local.data_readers.
    for (rtype, scope) in (("google_storage_bucket_iam_member", "bucket:data"), ("google_bigquery_dataset_iam_member", "dataset:data")):
        body = res[(rtype, "data_readers")]
        for sa in loc["data_readers"]:
            add(sa, scope, body["role"])
    holds = res[("google_pubsub_subscription_iam_member", "dead_letter_readers")]
    add(_sa(holds["member"]), "subscription:dead_letter_holds", holds["role"])
    # The webhook URL secrets (notifications.tf): project grants held to the trainyard-webhook- name prefix.
    for name in ("webhook_secret_creator", "webhook_url_writer", "webhook_url_reader"):
        body = res[("google_project_iam_member", name)]
        condition = body.get("condition")
        condition = condition[0] if isinstance(condition, list) else condition
        scope = "project" if not condition else "secret:webhook_urls"
        if condition:  # the prefix the API names its secrets with (shared/services/notification_targets.py)
            from shared.services.notification_targets import URL_SECRET_PREFIX

            assert "local.webhook_url_secrets" in condition["expression"], condition
            assert loc["webhook_url_secrets"].endswith(f"/secrets/{URL_SECRET_PREFIX}"), loc["webhook_url_secrets"]
        role = body["role"]
        custom_role = re.search(r"google_project_iam_custom_role\.(\w+)\.name", role)
        add(_sa(body["member"]), scope, custom_role.group(1) if custom_role else role)
    for name, scope in (("notify_reader", "secret:notify"), ("cursor_key_reader", "secret:cursor_key")):
        secrets = res[("google_secret_manager_secret_iam_member", name)]
        add(_sa(secrets["member"]), scope, secrets["role"])

    custom = {f"custom:{name}": set(r["permissions"]) for name, r in loc["scheduler_job_roles"].items()}
    custom["artifacts_read_delete"] = set(res[("google_project_iam_custom_role", "artifacts_read_delete")]["permissions"])
    for name in ("webhook_secret_creator", "webhook_url_writer"):
        custom[name] = set(res[("google_project_iam_custom_role", name)]["permissions"])
    return grants, custom


def check(rows: list[dict], grants: dict, permissions: dict[str, set[str]]) -> list[str]:
    problems = []
    for row in rows:
        where = f"{row['workload']}: {row['api']} {row['method']} needs {row['permission']}"
        if row["role"] not in permissions:
            problems.append(f"{where}: {row['role']} is neither vendored nor a custom role of iam.tf")
        elif row["permission"] not in permissions[row["role"]]:
            problems.append(f"{where}: {row['role']} does not contain it")
        held = grants.get(row["workload"], set())
        for scope in row["scope"] if isinstance(row["scope"], list) else [row["scope"]]:
            if scope == "dataset:created":
                # BigQuery makes a dataset's creator its OWNER (roles/bigquery.dataOwner on it).
                if row["role"] != "roles/bigquery.dataOwner" or not any(
                        s == "project" and "bigquery.datasets.create" in permissions.get(r, set()) for s, r in held):
                    problems.append(f"{where}: {row['workload']} cannot create the dataset it would own")
            elif (scope, row["role"]) not in held:
                problems.append(f"{where}: Terraform grants {row['workload']} no {row['role']} on {scope}")
    return problems


def unexplained(rows: list[dict], grants: dict) -> list[str]:
    """Project roles no row needs: a grant without a call is a hole (least privilege)."""
    used = {(r["workload"], r["role"]) for r in rows}
    return [f"{sa}: {role} on the project has no row in iam_requirements.yaml"
            for sa, held in grants.items() for scope, role in held if scope == "project" and (sa, role) not in used]


@pytest.fixture(scope="module")
def root() -> dict:
    return hcl.load_dir(TF_ROOT)


def test_every_row_is_well_formed_and_cited():
    rows = table()
    assert {r["workload"] for r in rows} == WORKLOADS
    for r in rows:
        assert ROW_KEYS <= set(r) <= ROW_KEYS | {"unconfirmed"}, r
        assert re.fullmatch(r"[a-z]+\.[A-Za-z]+\.[A-Za-z]+", r["permission"]), r
        assert r["cite"].startswith("https://cloud.google.com/"), r
        assert isinstance(r.get("unconfirmed", "-"), str) and r.get("unconfirmed", "-"), r  # a reason, if any


def test_the_vendored_roles_say_where_they_come_from():
    doc = role_sources()
    assert "cloud.google.com/iam/docs/roles-permissions" in doc["_source"]["reference"] and doc["_source"]["snapshot"]
    assert "github.com" not in (TF_ROOT / "iam_roles.json").read_text(), "only Google's own pages"
    for name, role in doc["roles"].items():
        assert role["source"].startswith("https://cloud.google.com/") and role["checked"] == CHECKED, name
        assert set(role["evidence"]) == set(role["permissions"]), name
        assert all(e.startswith("https://cloud.google.com/") for e in role["evidence"].values()), name
        assert not set(role["permissions"]) & set(role.get("unconfirmed", {})), name


def test_the_vendored_roles_list_only_what_the_table_relies_on():
    needed: dict[str, set[str]] = {}
    for r in table():
        if r["role"].startswith("roles/"):
            needed.setdefault(r["role"], set()).add(r["permission"])
    assert vendored() == needed


def test_unconfirmed_pairs_are_reported():
    """What could not be read on a Google page is kept (the grant check still covers it) and said."""
    pairs = unconfirmed_role_permissions()
    rows = [r for r in table() if "unconfirmed" in r]
    if pairs or rows:
        lines = [f"{role} contains {perm}? {why}" for (role, perm), why in sorted(pairs.items())]
        lines += sorted({f"{r['method']} checks {r['permission']}? {r['unconfirmed']}" for r in rows})
        warnings.warn(f"{len(pairs)} role permissions and {len(rows)} table rows are not confirmed on a Google page:\n"
                      + "\n".join(lines), UserWarning, stacklevel=1)
    assert all(why for why in pairs.values())


def test_terraform_grants_every_call_in_the_table(root):
    grants, custom = terraform_grants(root)
    problems = check(table(), grants, {**vendored(), **custom})
    assert problems == [], "\n".join(problems)


def test_no_project_role_is_granted_without_a_call_that_needs_it(root):
    grants, _ = terraform_grants(root)
    problems = unexplained(table(), grants)
    assert problems == [], "\n".join(problems)


def test_every_granted_predefined_role_is_vendored(root):
    grants, custom = terraform_grants(root)
    roles = {role for held in grants.values() for _, role in held} - set(custom)
    assert roles <= set(vendored()), sorted(roles - set(vendored()))


def test_the_check_catches_a_missing_grant(root):
    """Beam's temporary dataset (review-2 N6): without bigquery.user the pipeline cannot create it."""
    grants, custom = terraform_grants(root)
    grants["pipeline"] = {g for g in grants["pipeline"] if g != ("project", "roles/bigquery.user")}
    problems = check(table(), grants, {**vendored(), **custom})
    assert any("bigquery.datasets.create" in p for p in problems)
    assert any("cannot create the dataset it would own" in p for p in problems)


def test_docs_iam_md_is_the_rendered_table():
    rendered = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "render_iam_doc.py"), "--stdout"],
                              capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
    assert (REPO_ROOT / "docs" / "iam.md").read_text() == rendered, "run: python scripts/render_iam_doc.py"


def test_the_table_names_every_rpc_our_clients_call():
    """The gRPC methods the Vertex and Cloud Scheduler adapters call (parsed from the table's method
    column: what the rehearsal's fakes check a run against, tests/rehearsal/test_cloud_runs.py)."""
    named = rpc_methods(table())
    assert {"PipelineService.CreatePipelineJob", "PipelineService.CancelPipelineJob", "JobService.CreateCustomJob",
            "ModelService.UploadModel", "ModelService.ListModelVersions", "EndpointService.DeployModel",
            "CloudScheduler.ResumeJob"} <= named
