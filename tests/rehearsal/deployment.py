"""The deployment as terraform/, the Dockerfiles and cloudbuild.yaml describe it: every deployable with
the files it is made of, the command and environment it starts with, and the push subscription that
feeds it. Read from those files (tests/rehearsal/terraform_model.py, images.py), never restated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from tests.rehearsal import images, terraform_model
from tests.rehearsal.terraform_model import _text

REPO = Path(__file__).resolve().parents[2]
TF_ROOT = REPO / "terraform"
TFVARS = TF_ROOT / "examples" / "minimal" / "minimal.tfvars"


@dataclass
class Function:
    """A Cloud Functions gen2 function: a zip built by Cloud Build's Python buildpack."""

    module: str
    role: str  # whose settings it reads (shared/settings.py), from the environment it is given
    name: str
    entry_point: str
    runtime: str
    files: dict[str, Path]  # zip path -> file in the repository (terraform's archive rules)
    env: dict[str, str]
    timeout_s: int
    ingress: str
    invokers: dict[str, str]
    build_service_account: str
    service_account: str  # the identity it runs as


@dataclass
class Service:
    """A Cloud Run service from one of the images."""

    module: str
    role: str
    name: str
    image: str
    dockerfile: Path
    command: list[str]
    args: list[str]
    env: dict[str, str]
    timeout_s: int
    invokers: dict[str, str]
    service_account: str  # the identity it runs as


@dataclass
class Push:
    consumer: str
    name: str
    topic: str
    dead_letter_topic: str
    target: str  # module name of the function/service the endpoint belongs to
    path: str  # the endpoint's path (/projects/P/topics/T)
    ack_deadline_s: int
    minimum_backoff_s: int
    maximum_backoff_s: int
    max_delivery_attempts: int
    push_identity: str
    audience: str


@dataclass
class Deployment:
    plan: terraform_model.Instance
    functions: dict[str, Function] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    pushes: dict[str, Push] = field(default_factory=dict)

    def deployable(self, module: str):
        return self.functions.get(module) or self.services[module]

    @property
    def deployables(self) -> dict:
        return {**self.functions, **self.services}


def _seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)s", str(value))
    if not m:
        raise ValueError(f"not a duration in seconds: {value!r}")
    return int(m.group(1))


def _secret_env(secrets: dict) -> dict:
    """What a function reads from Secret Manager is in its environment too; the value is not known offline."""
    return {name: f"<secret {secret}: 32 or more characters>" for name, secret in (secrets or {}).items()}


def _role(block, row: Optional[dict] = None) -> str:
    """The deployable's settings role: which entry of local.environment it is given (by name, or by a
    field of its for_each row: local.environment[each.value.service_account])."""
    text = _text(block.attrs["environment_variables"])
    m = re.search(r'local\.environment\["(\w+)"\]', text)
    if m:
        return m.group(1)
    m = re.search(r'local\.environment\[each\.value\.(\w+)\]', text)
    if m and row is not None:
        return row[m.group(1)]
    raise ValueError("environment_variables is not an entry of local.environment")


def _instances(plan, name: str, block) -> list[tuple[str, Any, Optional[dict]]]:
    """(address, instance, for_each row) of each instance of a module call: `name`, or `name["key"]`."""
    if "for_each" not in block.attrs:
        return [(name, plan.child(name), None)]
    rows = plan.ev.eval(block.attrs["for_each"], {})
    return [(f'{name}["{key}"]', plan.child(name, key), rows[key]) for key in rows]


@lru_cache(maxsize=1)
def describe(tfvars: Path = TFVARS) -> Deployment:
    plan = terraform_model.load(TF_ROOT, tfvars)
    d = Deployment(plan)
    project, region = plan.var("project_id"), plan.var("region")
    built = images.built_images({"_PROJECT_ID": project, "_REGION": region,
                                 "_REPOSITORY": plan.var("artifact_registry_repository"),
                                 "_GPU_IMAGE": plan.var("gpu_image_name"),
                                 "_DATAFLOW_IMAGE": plan.var("dataflow_image_name"), "_TAG": plan.var("image_tag")})
    urls = {}
    for call, block in plan.source.modules.items():
        source = plan.ev.eval(block.attrs["source"], {})
        if not source.endswith(("light_function", "run_consumer")):
            continue
        for name, child, row in _instances(plan, call, block):
            _describe(d, name, child, _role(block, row), source, built, urls)
    for consumer, push_module in plan.child("push").items():
        sub = push_module.resource("google_pubsub_subscription", "this").args
        config = sub["push_config"][0]
        endpoint = config["push_endpoint"]
        base = next(u for u in urls if endpoint.startswith(u))
        retry, dead_letter = sub["retry_policy"][0], sub["dead_letter_policy"][0]
        d.pushes[consumer] = Push(
            consumer=consumer, name=sub["name"], topic=sub["topic"].rsplit("/", 1)[-1],
            dead_letter_topic=dead_letter["dead_letter_topic"].rsplit("/", 1)[-1], target=urls[base],
            path=endpoint[len(base):], ack_deadline_s=int(sub["ack_deadline_seconds"]),
            minimum_backoff_s=_seconds(retry["minimum_backoff"]), maximum_backoff_s=_seconds(retry["maximum_backoff"]),
            max_delivery_attempts=int(dead_letter["max_delivery_attempts"]),
            push_identity=config["oidc_token"][0]["service_account_email"], audience=config["oidc_token"][0]["audience"])
    return d


def _describe(d: Deployment, name: str, child, role: str, source: str, built: dict, urls: dict) -> None:
    """One function or service instance, as its module instance describes it."""
    if source.endswith("light_function"):
        fn = child.resource("google_cloudfunctions2_function", "this").args
        build, service = fn["build_config"][0], fn["service_config"][0]
        d.functions[name] = Function(
            module=name, role=role, name=fn["name"], entry_point=build["entry_point"],
            runtime=build["runtime"], files={k: Path(v) for k, v in child.local("files").items()},
            env={**service["environment_variables"], **_secret_env(child.var("secret_env"))},
            timeout_s=int(service["timeout_seconds"]),
            ingress=service["ingress_settings"], invokers=dict(child.var("invokers")),
            build_service_account=build["service_account"], service_account=service["service_account_email"])
        urls[child.output("uri")] = name
    else:
        svc = child.resource("google_cloud_run_v2_service", "this").args
        template = svc["template"][0]
        container = template["containers"][0]
        image = container["image"]
        if image not in built:
            raise ValueError(f"module.{name} runs {image}, which cloudbuild.yaml does not push")
        d.services[name] = Service(
            module=name, role=role, name=svc["name"], image=image, dockerfile=built[image],
            command=list(container.get("command") or []), args=list(container.get("args") or []),
            env={e["name"]: e["value"] for e in container.get("env", [])}, timeout_s=_seconds(template["timeout"]),
            invokers=dict(child.var("invokers")), service_account=template["service_account"])
        urls[child.output("uri")] = name


def topics_published_by(d: Deployment, service_account: str) -> set[str]:
    """The topics Terraform lets this identity publish to (topic-level roles/pubsub.publisher)."""
    return {r.args["topic"] for r in d.plan.resources("google_pubsub_topic_iam_member", "publishers")
            if r.args["role"] == "roles/pubsub.publisher" and r.args["member"] == f"serviceAccount:{service_account}"}


def image_of(service: Service) -> images.Image:
    return images.load(service.dockerfile)


def invoker_of(d: Deployment, push: Push) -> Optional[str]:
    """The member the push's target lets invoke it under the name 'push'."""
    return d.deployable(push.target).invokers.get("push")
