"""What a first `terraform apply` on a fresh project needs beyond the schema (cloud-deploy-review-2
N2, N3, N4, N7 and the missing wait for IAM propagation), checked on the parsed Terraform, the
evaluated plan (tests/rehearsal/terraform_model.py) and the deploy docs."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.rehearsal import terraform_model
from tests.unit.terraform_support import hcl
from tests.unit.terraform_support.hcl import REPO_ROOT, TF_ROOT

DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "gpu_image" / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def confs() -> dict:
    return {str(d.relative_to(TF_ROOT)): hcl.load_dir(d) for d in hcl.module_dirs()}


def _providers(conf: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for block in conf.get("provider", []):
        for name, body in block.items():
            out.setdefault(name, []).append(body)
    return out


def _shell_commands(text: str) -> list[str]:
    """The lines of a doc's shell snippets, continuation lines joined."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


# ----------------------------------------------------------------------------- N2 quota project


def test_every_example_bills_firebase_calls_to_a_quota_project(confs):
    """Firebase and Identity Platform refuse user credentials (ADC) without a quota project
    (provider docs of google_firebase_project: "should usually be used with ... user_project_override
    = true"; hashicorp/terraform-provider-google#18668)."""
    uses_firebase = [f"{where}: {rtype}.{name}" for where, conf in confs.items()
                     for rtype, name in hcl.resources(conf)
                     if rtype.startswith(("google_firebase_", "google_identity_platform_"))]
    assert uses_firebase, "no Firebase resource left: drop this test with them"
    examples = {where: conf for where, conf in confs.items() if where.startswith("examples/")}
    assert examples
    for where, conf in examples.items():
        providers = _providers(conf)
        for name in ("google", "google-beta"):
            assert providers.get(name), f"{where}: no provider \"{name}\" block ({uses_firebase[0]} needs one)"
            for body in providers[name]:
                assert body.get("user_project_override") is True, f"{where}: provider {name} lacks user_project_override = true"
                assert body.get("billing_project") == "${var.project_id}", f"{where}: provider {name} lacks billing_project"


def test_the_deploy_walkthrough_sets_the_quota_project_for_the_root_module():
    """docs/deploy.md applies terraform/ itself, which has no provider block (a module must not): the
    same two settings come from the provider's environment variables."""
    assert not _providers(hcl.load_dir(TF_ROOT)), "terraform/ is also a module: keep provider blocks in the examples"
    lines = _shell_commands((REPO_ROOT / "docs" / "deploy.md").read_text())
    exports = " ".join(line for line in lines if line.strip().startswith("export "))
    assert re.search(r"\bGOOGLE_BILLING_PROJECT=\"?\$PROJECT_ID\b", exports), exports
    assert re.search(r"\bUSER_PROJECT_OVERRIDE=true\b", exports), exports


# ----------------------------------------------------------------------------- N3 and propagation


def test_the_build_account_has_what_a_gen2_function_build_needs(confs):
    """https://cloud.google.com/run/docs/configuring/services/build-service-account: logWriter,
    artifactregistry.writer and storage.objectAdmin (the source sits in the platform's own
    gcf-v2-sources-<number>-<region> bucket, so the grant is project-wide)."""
    build = hcl.locals_(confs["."])["project_roles"]["build"]
    assert {"roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"} <= set(build)


def _depends_on(body: dict) -> list[str]:
    return [d.strip("${}") for d in body.get("depends_on", [])]


def test_whatever_first_uses_a_fresh_grant_waits_for_iam_propagation(confs):
    root = confs["."]
    res = hcl.resources(root)
    sleep = res.get(("time_sleep", "iam_propagation"))
    assert sleep is not None, "no time_sleep after the IAM grants"
    assert int(re.fullmatch(r"(\d+)s", sleep["create_duration"])[1]) >= 120  # IAM: "typically 2 minutes"
    # Every grant to a workload account is waited for.
    grants = {f"{rtype}.{name}" for (rtype, name), body in res.items()
              if rtype.endswith("_iam_member") and "google_service_account.sa[each" in body.get("member", "")}
    assert grants and grants <= set(_depends_on(sleep)), sorted(grants - set(_depends_on(sleep)))
    # Every function build and every service waits.
    for name, call in hcl.modules(root).items():
        if call["source"] in ("./modules/light_function", "./modules/run_consumer"):
            assert "time_sleep.iam_propagation" in _depends_on(call), f"module {name} does not wait for IAM propagation"
    for where, conf in confs.items():
        if where == "." or where.startswith("examples/"):
            providers = {k: v for block in conf["terraform"] for req in block["required_providers"] for k, v in req.items()}
            assert providers.get("time", {}).get("source") == "hashicorp/time", where


# ----------------------------------------------------------------------------- N4 build region


def _build_regions(confs) -> tuple[list[str], str]:
    var = hcl.variables(confs["."])["build_region"]
    condition = hcl.first_block(var, "validation")["condition"]
    return re.findall(r'"([a-z0-9-]+)"', condition), var["default"]


def test_the_build_region_is_one_every_project_may_use(confs):
    """https://cloud.google.com/build/docs/locations, "Restricted regions for some projects": some
    projects may build only in these (elsewhere: FAILED_PRECONDITION ... quota restrictions)."""
    allowed, default = _build_regions(confs)
    assert set(allowed) == {"global", "us-central1", "us-west2", "europe-west1", "asia-east1",
                            "australia-southeast1", "southamerica-east1"}
    assert default in allowed
    outputs = {name: body for block in confs["."]["output"] for name, body in block.items()}
    command = outputs["image_build_command"]["value"]
    assert "--region ${var.build_region}" in command and "_REGION=${var.region}" in command, command


def test_every_documented_image_build_runs_in_an_allowed_region(confs):
    allowed, _ = _build_regions(confs)
    seen = 0
    for doc in DOCS:
        text = doc.read_text()
        assigned = dict(re.findall(r"\b([A-Z_]+)=([a-z0-9-]+)\b", text))
        for line in _shell_commands(text):
            if "gcloud builds submit" not in line or "--region" not in line:
                continue
            seen += 1
            value = re.search(r"--region[ =]\"?(\$\{?\w+\}?|[a-z0-9-]+)\"?", line)[1]
            region = assigned.get(value.strip("${}")) if value.startswith("$") else value
            assert region in allowed, f"{doc.name}: `gcloud builds submit --region {value}` builds in {region}"
    assert seen, "no documented `gcloud builds submit --region ...`"


# ----------------------------------------------------------------------------- N7 the users' data


def _plan_with_data(tmp_path) -> terraform_model.Instance:
    tfvars = tmp_path / "data.tfvars"
    example = (TF_ROOT / "examples/minimal/minimal.tfvars").read_text()
    # The example's team spells out its data (the Terraform model, tests/rehearsal/terraform_model.py, does
    # not apply a variable type's optional() defaults): no dataset, one bucket.
    assert 'buckets     = ["gs://my-trainyard-project-data/"]' in example, "the example's teams changed"
    tfvars.write_text(example
                      + '\ndata_buckets = ["team-data", "shared.example.com"]\n'
                      + 'data_bigquery_datasets = ["sales", "warehouse-prj.events"]\n')
    return terraform_model.load(TF_ROOT, tfvars)


def test_the_pipeline_and_the_submitter_may_read_the_listed_data_and_nothing_more(tmp_path):
    plan = _plan_with_data(tmp_path)
    sa = {k: f"serviceAccount:trainyard-{k}@my-trainyard-project.iam.gserviceaccount.com" for k in ("pipeline", "submitter")}
    buckets = {(r.args["bucket"], r.args["role"], r.args["member"])
               for r in plan.resources("google_storage_bucket_iam_member", "data_readers")}
    assert buckets == {(b, "roles/storage.objectViewer", sa[k])
                       for b in ("team-data", "shared.example.com", "my-trainyard-project-data") for k in sa}
    datasets = {(r.args["project"], r.args["dataset_id"], r.args["role"], r.args["member"])
                for r in plan.resources("google_bigquery_dataset_iam_member", "data_readers")}
    assert datasets == {(p, d, "roles/bigquery.dataViewer", sa[k])
                        for p, d in (("my-trainyard-project", "sales"), ("warehouse-prj", "events")) for k in sa}
    # No project-wide read of every dataset (security review H1): only the listed ones.
    assert "roles/bigquery.dataViewer" not in plan.local("project_roles")["pipeline"]


def test_every_teams_declared_data_is_granted_and_nothing_else(tmp_path):
    """The teams' datasets and buckets (security review H1: IAM scoped to the declared data) are granted
    with the data_* variables, each once; a team's bucket prefix is granted on its bucket."""
    tfvars = tmp_path / "teams.tfvars"
    tfvars.write_text((TF_ROOT / "examples/minimal/minimal.tfvars").read_text() + """
data_buckets           = ["team-data"]
data_bigquery_datasets = ["sales"]
teams = {
  recs = { members = { "user:a@example.com" = "admin" }, model_names = [], endpoints = [],
           datasets = ["warehouse-prj.recs", "my-trainyard-project.sales"],
           buckets = ["gs://recs-data/", "gs://shared-data/recs/"] }
  ads  = { members = { "user:b@example.com" = "admin" }, model_names = [], endpoints = [],
           datasets = ["warehouse-prj.ads"], buckets = ["gs://shared-data/ads/", "gs://team-data/"] }
}
""")
    plan = terraform_model.load(TF_ROOT, tfvars)
    pipeline = "serviceAccount:trainyard-pipeline@my-trainyard-project.iam.gserviceaccount.com"
    buckets = sorted(r.args["bucket"] for r in plan.resources("google_storage_bucket_iam_member", "data_readers")
                     if r.args["member"] == pipeline)
    assert buckets == ["recs-data", "shared-data", "team-data"]
    datasets = sorted((r.args["project"], r.args["dataset_id"])
                      for r in plan.resources("google_bigquery_dataset_iam_member", "data_readers")
                      if r.args["member"] == pipeline)
    # "sales" (data_bigquery_datasets) and recs' "my-trainyard-project.sales" are one binding, not two.
    assert datasets == [("my-trainyard-project", "sales"), ("warehouse-prj", "ads"), ("warehouse-prj", "recs")]
    keys = {k.rsplit("/", 1)[0] for k in plan.local("data_dataset_bindings")}
    assert "sales" in keys, "an upgrading deploy's binding keeps its key"


def test_the_example_passes_the_data_variables_through(confs):
    call = hcl.modules(confs["examples/minimal"])["trainyard"]
    for name in ("data_buckets", "data_bigquery_datasets", "build_region"):
        assert call.get(name) == f"${{var.{name}}}", name


def _console(tmp_path, assignments: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    """`terraform console` over terraform/variables.tf alone (no provider needed): Terraform itself
    runs the variables' validation rules."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not installed: cannot evaluate the validation rules")
    shutil.copy(TF_ROOT / "variables.tf", tmp_path / "variables.tf")
    required = [n for n, v in hcl.variables(hcl.load_dir(TF_ROOT)).items() if "default" not in v]
    valid = {"org_domain": "example.com"}  # a required variable whose validation refuses a bare "x"
    args = [f"-var={n}={valid.get(n, 'x')}" for n in required if n not in assignments]
    args += [f"-var={n}={v}" for n, v in assignments.items()]
    return subprocess.run([terraform, "console", "-input=false", "-no-color", *args], input=expr, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name,value,ok", [
    ("data_buckets", '["team-data","shared.example.com"]', True),
    ("data_buckets", '["gs://team-data"]', False),
    ("data_buckets", '["team-data/train"]', False),
    ("data_bigquery_datasets", '["sales","warehouse-prj.events","example.com:warehouse-prj.web_logs"]', True),
    ("data_bigquery_datasets", '["warehouse-prj.events.clicks"]', False),
    ("data_bigquery_datasets", '["bq://warehouse-prj.events"]', False),
    ("teams", '{recs={members={"user:a@x.com"="admin"},datasets=["my-proj.recs_data","example.com:my-proj.web"],'
              'buckets=["gs://recs-data/","gs://shared-data/recs/2024/"]}}', True),
    ("teams", '{recs={members={},datasets=["my-proj.recs_*"]}}', False),  # a pattern is no IAM grant
    ("teams", '{recs={members={},datasets=["*"]}}', False),
    ("teams", '{recs={members={},datasets=["my-proj.recs.events"]}}', False),  # a table, not a dataset
    ("teams", '{recs={members={},buckets=["gs://recs-data"]}}', False),  # a folder ends in '/'
    ("teams", '{recs={members={},buckets=["recs-data/"]}}', False),
    ("teams", '{recs={members={},buckets=["gs://recs-data/../hr/"]}}', False),
    ("teams", '{recs={members={},buckets=["gs://recs-data/*"]}}', False),
    ("build_region", "europe-west1", True),
    ("build_region", "global", True),
    ("build_region", "europe-west4", False),
    ("org_domain", "example.com", True),
    ("org_domain", "", False),               # review M3: an empty domain admitted any Google account
    ("org_domain", "@example.com", False),
    ("org_domain", "Example.com", False),
])
def test_the_new_variables_reject_what_google_would_refuse(tmp_path, name, value, ok):
    proc = _console(tmp_path, {name: value}, f"var.{name}\n")
    output = proc.stdout + proc.stderr
    refused = re.search(rf"Invalid value for variable.*?var\.{name}\b", output, re.S)
    # console reports a failed validation as a diagnostic (its exit status stays 0)
    assert bool(refused) != ok, output
    if ok:
        assert proc.returncode == 0 and "Error" not in output, output
