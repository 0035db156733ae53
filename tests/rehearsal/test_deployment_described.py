"""The deployment as terraform/, the Dockerfiles and cloudbuild.yaml describe it, checked without
starting anything: each deployable's environment against the one settings declaration, what each
function's zip holds, and terraform/ against the google,
google-beta and archive provider schemas (tools/terraform_schema, offline), plan-time values included."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import settings as S
from tests.rehearsal.deployment import describe, invoker_of
from tests.rehearsal import terraform_model
from tests.rehearsal.terraform_model import PROJECT_NUMBER

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.rehearsal


@pytest.fixture(scope="module")
def deployment():
    return describe()


def test_every_deployable_gets_what_it_reads_and_nothing_else(deployment):
    """A4: Terraform set TRAINYARD_GPU_IMAGE, which nothing read, and not what the submitter reads."""
    problems = []
    for module, d in deployment.deployables.items():
        required = {v.name for v in S.required_by(d.role)}
        allowed = {v.name for v in S.read_by(d.role) if v.cloud != S.LOCAL}
        missing = sorted(required - set(d.env))
        unread = sorted(set(d.env) - allowed)
        if missing:
            problems.append(f"module.{module} ({d.role}) lacks {missing}")
        if unread:
            problems.append(f"module.{module} ({d.role}) is given {unread}, which it does not read "
                            "(or which only the local twin may set)")
    assert problems == [], "\n".join(problems)
    # and the values make the settings of the cloud
    for module, d in deployment.deployables.items():
        settings = S.Settings.from_environ(d.env)
        assert settings.pipeline_backend == ("local" if d.role == S.SCHEDULER else "vertex"), module


def test_every_role_has_a_deployable(deployment):
    assert {d.role for d in deployment.deployables.values()} == set(S.DEPLOYABLES)


def test_the_submitter_compiles_for_the_cloud_with_its_environment(deployment):
    from pipeline_compiler.environment import PipelineEnv

    env = PipelineEnv.from_settings(S.Settings.from_environ(deployment.services['consumer_service["submitter"]'].env))
    assert env.is_vertex
    env.require_cloud()  # every name the vertex target needs is there
    assert env.pipeline_image == deployment.services['consumer_service["submitter"]'].image  # tasks run the submitter's own image
    assert env.dataflow_temp.startswith("gs://") and env.dataflow_subnetwork.startswith("regions/")


def test_models_are_registered_with_the_serving_image_cloudbuild_pushes(deployment, tmp_path):
    """A6: every model was registered with Vertex's prebuilt tf2-cpu image, which cannot load the ScaNN
    index's ops. Whoever registers a model (the Pusher, compiled by the submitter; push-anyway in
    run-commands) now names the image serving_image/Dockerfile builds, and that image serves the port
    and routes registration declares (shared/adapters/serving/__init__.py)."""
    from model_server import vertex
    from shared.adapters.serving import HEALTH_ROUTE, PREDICT_ROUTE, SERVING_PORT
    from tests.rehearsal import images, terraform_model

    plan = deployment.plan
    built = images.built_images({"_PROJECT_ID": plan.var("project_id"), "_REGION": plan.var("region"),
                                 "_REPOSITORY": plan.var("artifact_registry_repository"),
                                 "_SERVING_IMAGE": plan.var("serving_image_name"), "_TAG": plan.var("image_tag")})
    dockerfile = REPO / "serving_image" / "Dockerfile"
    given = {d.role: d.env["TRAINYARD_SERVING_IMAGE"] for d in deployment.deployables.values()
             if "TRAINYARD_SERVING_IMAGE" in d.env}
    assert set(given) == set(S.BY_NAME["TRAINYARD_SERVING_IMAGE"].readers)  # the submitter and run-commands
    for role, image in given.items():
        assert built.get(image) == dockerfile, f"{role} registers models with {image}, which cloudbuild.yaml does not push"
        assert "vertex-ai/prediction" not in image
    assert plan.var("serving_image_name") == "trainyard-serving"

    serving = images.load(dockerfile)
    assert serving.command == ["python", "-m", vertex.__name__]
    assert (vertex.DEFAULT_PORT, vertex.DEFAULT_PREDICT_ROUTE, vertex.DEFAULT_HEALTH_ROUTE) == (
        SERVING_PORT, PREDICT_ROUTE, HEALTH_ROUTE)
    assert [a for k, a in serving.instructions if k == "EXPOSE"] == [str(SERVING_PORT)]
    assert "model_server/vertex.py" in serving.files() and not [f for f in serving.files() if f.startswith("shared/")]

    # serving_image stays an override of the pushed image
    tfvars = tmp_path / "override.tfvars"
    override = "europe-west4-docker.pkg.dev/other/repo/my-serving:1"
    tfvars.write_text((REPO / "terraform/examples/minimal/minimal.tfvars").read_text() + f'serving_image = "{override}"\n')
    assert terraform_model.load(REPO / "terraform", tfvars).local("serving_image") == override


def test_each_push_is_authenticated_as_the_one_identity_its_consumer_admits(deployment):
    """The emulator checks no OIDC token; Terraform's wiring is checked here: the push's identity is
    the only invoker of its consumer, and the token's audience is the consumer's own URL."""
    identities = set()
    for push in deployment.pushes.values():
        target = deployment.deployable(push.target)
        assert invoker_of(deployment, push) == f"serviceAccount:{push.push_identity}", push.consumer
        assert set(target.invokers) == {"push"}, push.consumer
        assert push.audience and push.path == f"/projects/{deployment.plan.var('project_id')}/topics/{push.topic}"
        identities.add(push.push_identity)
    assert len(identities) == len(deployment.pushes)  # one identity per consumer
    assert "push" not in deployment.functions["fn_api"].invokers


def test_each_function_zip_is_its_folder_and_shared(deployment):
    for module, fn in deployment.functions.items():
        names = set(fn.files)
        assert {"main.py", "requirements.txt", "shared/__init__.py", "shared/settings.py"} <= names, module
        assert not [n for n in names if n.startswith(("tests/", "pipeline_compiler/")) or "__pycache__" in n], module
        tree = ast.parse(fn.files["main.py"].read_text())
        entry = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == fn.entry_point), None)
        assert entry is not None, f"{module}: main.py defines no {fn.entry_point}"
        decorators = {ast.unparse(d) for d in entry.decorator_list}
        consumer = any(p.target == module for p in deployment.pushes.values())
        # An HTTP-deployed function behind a push subscription is a CloudEvent function by its decorator.
        assert decorators == {"functions_framework.cloud_event" if consumer else "functions_framework.http"}, module


def test_terraform_matches_the_provider_schemas_and_plans_on_a_fresh_project(tmp_path):
    """A1: `count`/`for_each` that depend on values unknown until apply make `terraform plan` fail;
    --strict turns the checker's unknown-at-plan warnings into failures."""
    tool = REPO / "tools" / "terraform_schema" / "check_tf.py"
    report_path = tmp_path / "report.json"
    result = subprocess.run([sys.executable, str(tool), "--root", "terraform", "--strict", "--json", str(report_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["stats"]["files"] >= 30  # every .tf file of root, modules and example
    assert [f for f in report["findings"] if f["severity"] in ("error", "warning")] == []


def test_the_schema_check_sees_a_plan_time_unknown(tmp_path):
    """The same check on a seeded copy of main's defect: a count on `x != null` of a resource id."""
    (tmp_path / "main.tf").write_text('''
resource "google_pubsub_topic" "t" {
  name = "t"
}
locals {
  is_event = google_pubsub_topic.t.id != null
}
resource "google_pubsub_subscription" "s" {
  count = local.is_event ? 1 : 0
  name  = "s"
  topic = google_pubsub_topic.t.id
}
''')
    (tmp_path / "versions.tf").write_text('terraform {\n  required_providers {\n    google = {\n'
                                          '      source = "hashicorp/google"\n    }\n  }\n}\n')
    tool = REPO / "tools" / "terraform_schema" / "check_tf.py"
    result = subprocess.run([sys.executable, str(tool), "--root", str(tmp_path), "--strict"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1 and "unknown-at-plan" in result.stdout


DIST = REPO / "dashboard" / "dist"


def test_the_web_entrance_zip_carries_the_built_dashboard(deployment):
    """A7: dashboard/dist was never in a zip, so /training answered 503 in the cloud."""
    import re

    if not (DIST / "index.html").is_file():
        pytest.skip("dashboard/dist is not built (scripts/setup_dashboard.sh); terraform plan refuses it too")
    files = deployment.functions["fn_web"].files
    built = {f"dashboard_dist/{p.relative_to(DIST)}" for p in DIST.rglob("*") if p.is_file()}
    assert built <= set(files), f"not packaged: {sorted(built - set(files))}"
    referenced = re.findall(r'(?:src|href)="/training/(assets/[^"]+)"', (DIST / "index.html").read_text())
    assert referenced and all(f"dashboard_dist/{r}" in files for r in referenced)
    assert {"main.py", "requirements.txt", "shared/http/dashboard_routes.py"} <= set(files)


def test_the_web_entrance_verifies_firebase_tokens_and_hands_the_page_its_config(deployment):
    web, api = deployment.functions["fn_web"], deployment.functions["fn_api"]
    assert web.ingress == "ALLOW_ALL" and web.entry_point == api.entry_point and web.role == api.role
    settings = S.Settings.from_environ(web.env)
    assert settings.auth_mode == "firebase" and not settings.firebase_auth_emulator_host
    assert settings.firebase["projectId"] == deployment.plan.var("project_id")
    assert settings.firebase["apiKey"] and settings.firebase["appId"].startswith("1:")
    assert S.Settings.from_environ(api.env).auth_mode == "google"
    host = f"trainyard-web-{PROJECT_NUMBER}.{deployment.plan.var('region')}.run.app"
    domains = deployment.plan.resource("google_identity_platform_config", "this").args["authorized_domains"]
    assert host in domains and f"{deployment.plan.var('project_id')}.firebaseapp.com" in domains


# --------------------------------------------------------------------------- URLs that agree (issue 28 part 3)


def test_a_token_minted_for_the_api_url_output_is_accepted_by_the_api(deployment):
    """N10: api_url was the hashed *.a.run.app host, which the API does not accept as an audience, so a
    service account minting `--audiences=$(terraform output -raw api_url)` (docs/deploy.md, the CLI)
    got 401. The API's own check, with its Terraform environment, takes a token minted for the output."""
    from shared.http.identity import authenticate
    from tests.identity_tokens import delivered_token

    api_url = deployment.plan.output("api_url")
    settings = S.Settings.from_environ(deployment.functions["fn_api"].env)
    email = f"ci-bot@{settings.allowed_domain}"
    token = delivered_token(email, aud=api_url)
    assert authenticate({"Authorization": f"Bearer {token}"}, settings) == email
    assert not isinstance(api_url, terraform_model.AfterApply)  # known before apply, like the audiences


def test_the_dashboard_url_output_is_on_an_authorised_sign_in_domain(deployment):
    """N5: dashboard_url was built on the hashed trainyard-web host, which Identity Platform did not
    authorise: signInWithPopup fails there with auth/unauthorized-domain. Both hosts the entrance
    answers at are authorised; the output names the deterministic one."""
    from urllib.parse import urlsplit

    dashboard_url = deployment.plan.output("dashboard_url")
    domains = deployment.plan.resource("google_identity_platform_config", "this").args["authorized_domains"]
    assert urlsplit(dashboard_url).hostname in domains, (dashboard_url, domains)
    assert urlsplit(deployment.plan.child("fn_web").output("uri")).hostname in domains
    assert urlsplit(dashboard_url).path == "/training"  # where shared/http/dashboard_routes.py serves the page


def test_every_notification_link_opens_the_dashboard_url(deployment, tmp_path):
    """N11: run-commands linked runs to /training on trainyard-api, which Cloud Run IAM closes to a
    browser (403). A notification rendered by run-commands' own code, with its Terraform environment,
    links to the dashboard_url output."""
    import dataclasses
    from urllib.parse import urlsplit

    from shared import composition
    from shared.adapters.notify_targets import LocalSecrets, TopicSender
    from shared.adapters.scheduler_jobs import LocalTickerJobs
    from shared.adapters.secret_store import LocalSecretFile
    from shared.services import intake
    from shared.services.actions import notify
    from shared.services.notification_targets import NotificationTargets, TargetPolicy
    from shared.services.ports import Effects
    from tests.builders import demo_member, run_body, seed_catalog
    from tests.fakes import FakePublisher, InMemoryRepository

    class Received:
        def __init__(self):
            self.payloads = []

        def send(self, url, payload, secret=None):
            self.payloads.append(payload)

    settings = S.Settings.from_environ(deployment.services['consumer_service["run_commands"]'].env)
    received, topic = Received(), FakePublisher()
    urls = LocalSecretFile(str(tmp_path / "webhook-urls.json"))  # Secret Manager's stand-in for the URLs
    notifier = dataclasses.replace(composition.notifier(settings), webhooks=received,
                                   topics=TopicSender(topic), secrets=LocalSecrets("{}"), urls=urls)
    repo = InMemoryRepository()
    targets = {"webhooks": [{"url": "https://hooks.example.com/services/T/B/x"}], "pubsub_topic": "ml-alerts"}
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(seed_catalog(repo)["experiment"], notifications=targets),
                            *demo_member("dev@example.com"), targets=NotificationTargets(TargetPolicy.of(settings), urls))
    repo.mutate_run(run["id"], lambda d: {**d, "status": "failed", "error_stage": "Train", "error_message": "OOM"})
    assert notify.deliver(repo, notifier, run["id"], 1, "failed") == "notified"

    dashboard = urlsplit(deployment.plan.output("dashboard_url"))
    links = [p["trainyard"]["link"] for p in received.payloads]
    links += [payload["link"] for _, payload, _ in topic.messages]
    assert len(links) == 2  # the webhook's and the topic's
    for link in links:
        to = urlsplit(link)
        assert (to.scheme, to.hostname, to.path) == (dashboard.scheme, dashboard.hostname, dashboard.path), link
        assert to.fragment == f"run={run['id']}"
