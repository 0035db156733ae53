"""Every environment variable a Trainyard process reads, declared once, and read once into `Settings`.

Each declaration says what the variable means, its default, which processes read it and what
Terraform must do with it:

- `TERRAFORM`: the default is wrong in the cloud; Terraform sets it for every deployable that reads it;
- `OPTIONAL`: the default is right in the cloud; Terraform may set it;
- `LOCAL`: only the local twin sets it; Terraform never does (a test fails if it does);
- `VERTEX`: Vertex AI sets it on the replicas of a job it runs (Terraform never does).

A declaration also says which `Settings` attribute the variable fills (`field`), how its text is read
(`parse`, whose return annotation is the attribute's type) and, when its default is words rather than a
literal, how the default is derived (`unset`). `Settings`, `Settings.from_environ`, the documentation
table and the local stack's defaults (scripts/stack.py) are all built from this one table: adding a setting
is one `Variable(...)` line.

No other module reads `os.environ` (tests/unit/test_settings.py enforces it); the rehearsal
(tests/rehearsal/) computes each deployable's environment from terraform/ and checks it against this
table. `python -m shared.settings` prints the table (docs/settings.md is that output).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import sys
from dataclasses import dataclass, field, make_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent

# Who reads a variable: the deployables terraform/ describes ...
API, SUBMITTER, PIPELINE_EVENTS, SCHEDULER, RUN_COMMANDS = "api", "submitter", "pipeline_events", "scheduler", "run_commands"
DEPLOYABLES = (API, SUBMITTER, PIPELINE_EVENTS, SCHEDULER, RUN_COMMANDS)
# ... and the local twin's own processes, which have no cloud counterpart.
PIPELINE_SERVICE, PREDICTION_SERVER, TICKER, STACK, CLI = (
    "pipeline_service", "prediction_server", "ticker", "stack", "cli")
# ... and the pipeline's Trainer (pipeline_compiler/modules/), in its Vertex CustomJob or the local runner.
TRAINER = "trainer"
ROLES = DEPLOYABLES + (PIPELINE_SERVICE, PREDICTION_SERVER, TICKER, STACK, CLI, TRAINER)

TERRAFORM, OPTIONAL, LOCAL, VERTEX = "terraform", "optional", "local", "vertex"
FUNCTIONS_FRAMEWORK = DEPLOYABLES  # every deployable serves through functions-framework
_ALL_CLIENTS = DEPLOYABLES + (PIPELINE_SERVICE, TICKER, STACK)


def _bool(value: str, name: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _number(value: str, name: str, kind=float):
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def _positive(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be above 0, not {value!r}")
    return value


def _at_least_one(value: int, name: str) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


# --------------------------------------------------------------------------- how a value is read
# A parser turns a variable's raw value ('' when unset and its default is "") into its field's value.
# `r` is the rest of the same reading: a rule that depends on another setting (local-only values are
# refused in the cloud) reads it from there. Errors name the variable.


def _text(raw: str, name: str, r: "_Reading") -> str:
    return raw


def _float(raw: str, name: str, r: "_Reading") -> float:
    return _number(raw, name)


def _int(raw: str, name: str, r: "_Reading") -> int:
    return _number(raw, name, int)


def _flag(raw: str, name: str, r: "_Reading") -> bool:
    return _bool(raw, name)


def _days(raw: str, name: str, r: "_Reading") -> float:
    return _at_least_one(_number(raw, name), name)


def _count(raw: str, name: str, r: "_Reading") -> int:
    return _at_least_one(_number(raw, name, int), name)



def _optional_days(raw: str, name: str, r: "_Reading") -> Optional[float]:
    return _days(raw, name, r)  # unset: None (its `unset`)


def _above_zero(raw: str, name: str, r: "_Reading") -> float:
    return _positive(_number(raw, name), name)


def _url(raw: str, name: str, r: "_Reading") -> str:
    return raw.rstrip("/")


def _directory(raw: str, name: str, r: "_Reading") -> str:
    return str(Path(raw).resolve())


def _backend(raw: str, name: str, r: "_Reading") -> str:
    if raw not in ("vertex", "local"):
        raise ValueError(f"{name} must be vertex or local, not {raw!r}")
    return raw


def _emails(raw: str, name: str, r: "_Reading") -> frozenset:
    return frozenset(e.strip().lower() for e in raw.split(",") if e.strip())


_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?$")


def _hosts(raw: str, name: str, r: "_Reading") -> tuple:
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if not _HOST.match(host):
            raise ValueError(f"{name}: {host!r} is not a host or host:port (no scheme, no path)")
    return hosts


def _names(raw: str, name: str, r: "_Reading") -> tuple:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _dev_token(raw: str, name: str, r: "_Reading") -> str:
    # Only the local stack has a developer token; without TRAINYARD_AUTH=local it is never honoured.
    return _no_local_identity_in_the_cloud(raw, r.pipeline_backend, name)


def _emulator_host(raw: str, name: str, r: "_Reading") -> str:
    return _no_emulator_in_the_cloud(raw, r.pipeline_backend, name)


def _local_receivers(raw: str, name: str, r: "_Reading") -> bool:
    return _local_only(_bool(raw, name), r.pipeline_backend, name,
                       "webhooks reach only public https:// addresses in the cloud")


def _groups(value: str, name: str, r: "_Reading") -> Optional[dict]:
    if not value:
        return None
    try:
        declared = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TRAINYARD_GROUPS is not JSON: {exc}") from None
    if not isinstance(declared, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(g, str) for g in v) for k, v in declared.items()):
        raise ValueError("TRAINYARD_GROUPS must be a JSON object of e-mail -> list of group addresses")
    return {k.strip().lower(): frozenset(g.strip().lower() for g in v) for k, v in declared.items()}


def _teams(value: str, name: str, r: "_Reading") -> tuple:
    from shared.domain import teams
    from shared.errors import FieldError

    if not value:
        return () if r.pipeline_backend == "vertex" else teams.demo(r.dev_identity)
    try:
        return teams.parse(json.loads(value))
    except json.JSONDecodeError as exc:
        raise ValueError(f"TRAINYARD_TEAMS is not JSON: {exc}") from None
    except FieldError as exc:
        raise ValueError(f"TRAINYARD_TEAMS: {exc}") from None


_SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# A prefix ends its host with "/", so https://hooks.example.com cannot admit https://hooks.example.com.evil.io.
_URL_PREFIX = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/\S*$")


def _signing_secrets(raw: str, name: str, r: "_Reading") -> dict:
    """TRAINYARD_NOTIFY_SIGNING_SECRETS: {name: [URL prefix, ...]}, each secret bound to where it may sign."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        raise ValueError(f"{name} must be a JSON object {{\"secret-name\": [\"https://host/path-prefix\"]}}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object of secret names")
    bound = {}
    for secret, prefixes in value.items():
        if not _SECRET_NAME.match(secret):
            raise ValueError(f"{name}: {secret!r} is not a secret name (letters, digits, '_' and '-')")
        if not isinstance(prefixes, list) or not prefixes or not all(
                isinstance(p, str) and _URL_PREFIX.match(p) for p in prefixes):
            raise ValueError(f"{name}: {secret!r} needs a list of URL prefixes, each https://host/ or longer")
        bound[secret] = tuple(prefixes)
    return bound


def _local_only(value, backend: str, name: str, why: str):
    """`value`, unless it is set in the cloud: a local-twin setting there is refused, saying why."""
    if value and backend == "vertex":
        raise ValueError(f"{name} is set with TRAINYARD_PIPELINE_BACKEND=vertex: {why}")
    return value


def _cursor_key(value: str, name: str, r: "_Reading") -> bytes:
    if value and len(value) < 32:
        raise ValueError("TRAINYARD_CURSOR_KEY must be at least 32 characters (e.g. openssl rand -base64 32)")
    if value:
        return value.encode()
    # One process alone locally: its own key (tokens do not survive a restart). Never in the cloud, where
    # instances must agree on the key.
    return b"" if r.pipeline_backend == "vertex" else secrets.token_bytes(32)


AUTH_MODES = ("google", "firebase", "local")
# The bearer token the local stack gives its API and the CLI sends to a local API when TRAINYARD_DEV_TOKEN
# is unset; the API itself accepts none unless the variable is set.
LOCAL_DEV_TOKEN = "trainyard-local-dev-token"


def _auth_mode(value: str, name: str, r: "_Reading") -> str:
    if value not in AUTH_MODES:
        raise ValueError(f"TRAINYARD_AUTH must be one of {', '.join(AUTH_MODES)}, not {value!r}")
    if value == "local":
        _no_local_identity_in_the_cloud(value, r.pipeline_backend, "TRAINYARD_AUTH=local")
    return value


def _no_local_identity_in_the_cloud(value: str, backend: str, name: str) -> str:
    # The local stack's developer identity is a shared string, not a verified person: in the cloud it
    # would let whoever learns it act as the developer (review LOW, dev token).
    return _local_only(value, backend, name, "the local developer identity is never accepted in the cloud "
                                             "(TRAINYARD_AUTH is google or firebase there)")


def _no_emulator_in_the_cloud(value: str, backend: str, name: str) -> str:
    # An emulator's identities are unsigned: honouring them in the cloud would let anyone in.
    return _local_only(value, backend, name, "emulator tokens are never accepted in the cloud")


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    default: str  # as documented; "" means unset. Derived defaults are spelled out in words (and `unset` computes them).
    readers: tuple[str, ...]
    cloud: str  # TERRAFORM | OPTIONAL | LOCAL | VERTEX
    # The `Settings` attribute it fills ("firebase.apiKey": one key of a dict attribute); None: not a setting
    # of the typed object (client libraries, the stack and the CLI read it: `read`, `read_or_default`).
    field: Optional[str] = None
    parse: Callable[[str, str, "_Reading"], Any] = _text  # its return annotation is the attribute's type
    # The value when unset, if the documented default is words, not a literal (derived from other settings).
    unset: Optional[Callable[["_Reading"], Any]] = None
    secret: bool = False  # kept out of the settings' repr


VARIABLES: tuple[Variable, ...] = (
    # ------------------------------------------------------------------ where
    Variable("GOOGLE_CLOUD_PROJECT", "the Google Cloud project (Firestore, Pub/Sub, Vertex AI, Dataflow; the CLI's "
             "`admin dead-letters`)", "trainyard-local", _ALL_CLIENTS + (CLI,), TERRAFORM,
             field="project"),
    Variable("TRAINYARD_REGION", "region of Vertex AI, Dataflow, Cloud Scheduler and the quota pre-flight",
             "europe-west4", (API, SUBMITTER, PIPELINE_EVENTS, RUN_COMMANDS), TERRAFORM,
             field="region"),
    Variable("TRAINYARD_ARTIFACTS_ROOT", "where each run's files live: {root}/{run_id}/ (gs:// in the cloud)",
             "{TRAINYARD_LOCAL_DIR}/artifacts", (SUBMITTER,), TERRAFORM,
             field="artifacts_root", unset=lambda r: str(Path(r.local_dir) / "artifacts")),
    Variable("TRAINYARD_PIPELINE_ROOT", "the pipeline root of each run: {root}/{run_id}/ (gs:// in the cloud)",
             "{TRAINYARD_LOCAL_DIR}/pipeline-root", (SUBMITTER,), TERRAFORM,
             field="pipeline_root", unset=lambda r: str(Path(r.local_dir) / "pipeline-root")),
    Variable("TRAINYARD_SUBMIT_LEASE_SECONDS", "how long a submit claim is held before a redelivery takes it over "
             "(the holder's request timeout plus a margin); run-submit's retry window must outlast it "
             "(terraform/pubsub.tf local.retry); the reconciler re-queues a run submitting longer than this",
             "630", (SUBMITTER, PIPELINE_EVENTS), TERRAFORM,
             field="submit_lease_s", parse=_float),
    Variable("TRAINYARD_PIPELINE_BACKEND", "vertex (Vertex AI Pipelines, Model Registry, Endpoints, Cloud Logging, "
             "quotas) or local (the local pipeline service, registry and prediction server); it is also the target "
             "a run's pipeline is compiled for", "local",
             (API, SUBMITTER, PIPELINE_EVENTS, RUN_COMMANDS), TERRAFORM,
             field="pipeline_backend", parse=_backend),
    # ------------------------------------------------------------------ the pipeline in the cloud
    Variable("TRAINYARD_PIPELINE_SERVICE_ACCOUNT", "identity of the pipeline job, its Trainer custom job, its "
             "Dataflow workers and the batch prediction jobs' serving containers", "", (SUBMITTER, RUN_COMMANDS), TERRAFORM,
             field="pipeline_service_account"),
    Variable("TRAINYARD_VERTEX_TENSORBOARD", "the Vertex AI TensorBoard instance (projects/…/locations/…/tensorboards/…) "
             "each Trainer CustomJob uploads its event files to (terraform/tensorboard.tf); unset: none, the event "
             "files stay with the run's artifacts", "", (SUBMITTER,), TERRAFORM,
             field="vertex_tensorboard"),
    Variable("TRAINYARD_PIPELINE_IMAGE", "the image every pipeline task and the Trainer run in (gpu_image/)", "",
             (SUBMITTER,), TERRAFORM,
             field="pipeline_image"),
    Variable("TRAINYARD_DATAFLOW_IMAGE", "the Dataflow workers' SDK container (dataflow_image/)", "",
             (SUBMITTER,), TERRAFORM,
             field="dataflow_image"),
    Variable("TRAINYARD_DATAFLOW_TEMP", "gs:// temp and staging location of Dataflow jobs and BigQuery exports", "",
             (SUBMITTER,), TERRAFORM,
             field="dataflow_temp"),
    Variable("TRAINYARD_DATAFLOW_SUBNETWORK", "subnetwork of the Dataflow workers (regions/R/subnetworks/S, or a "
             "full URL for a Shared VPC)", "", (SUBMITTER,), TERRAFORM,
             field="dataflow_subnetwork"),
    Variable("TRAINYARD_DATAFLOW_PUBLIC_IPS", "give Dataflow workers public IPs (false: Private Google Access only)",
             "false", (SUBMITTER,), OPTIONAL,
             field="dataflow_public_ips", parse=_flag),
    Variable("TRAINYARD_DATAFLOW_MACHINE_TYPE", "machine type of the Dataflow workers", "e2-standard-4",
             (SUBMITTER,), OPTIONAL,
             field="dataflow_machine_type"),
    Variable("TRAINYARD_DATAFLOW_MAX_WORKERS", "upper bound of Dataflow autoscaling per data stage", "10",
             (SUBMITTER,), OPTIONAL,
             field="dataflow_max_workers", parse=_int),
    Variable("TRAINYARD_DATAFLOW_MIN_ROWS", "a dataset with fewer rows (stats.rows x sample percent) runs its data "
             "stages with Beam's DirectRunner inside the task instead of a Dataflow job", "1000000",
             (SUBMITTER,), OPTIONAL,
             field="dataflow_min_rows", parse=_int),
    Variable("TRAINYARD_DATAFLOW_MIN_BYTES", "without row stats: files smaller than this in total (x sample percent) "
             "stay off Dataflow; BigQuery sources without stats always use Dataflow", "268435456",
             (SUBMITTER,), OPTIONAL,
             field="dataflow_min_bytes", parse=_int),
    Variable("TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS", "days after which the pipeline root's objects are deleted "
             "(terraform/storage.tf, var.pipeline_root_retention_days); a retry of a run older than this minus a "
             "margin is submitted without Vertex caching, whose hits would point at deleted outputs "
             "(shared/domain/pipeline_cache.py)", "none: never deleted (the local twin)", (SUBMITTER,), TERRAFORM,
             field="pipeline_root_retention_days", parse=_optional_days, unset=lambda r: None),
    Variable("TRAINYARD_SERVING_IMAGE", "prediction container registered with every model in the Vertex Model "
             "Registry: Trainyard's serving image (serving_image/: ScaNN's TF ops, Vertex's custom-container "
             "contract); Terraform sets the Artifact Registry reference cloudbuild.yaml pushes",
             "trainyard-serving", (SUBMITTER, RUN_COMMANDS), TERRAFORM,
             field="serving_image"),
    Variable("TRAINYARD_COMPILER", "module:function compiling a run to a Vertex PipelineJob (tests swap it)",
             "pipeline_compiler:compile_run", (SUBMITTER,), OPTIONAL,
             field="compiler"),
    # ------------------------------------------------------------------ identity
    Variable("TRAINYARD_AUTH", "google (behind Cloud Run IAM: the CLI's Google ID tokens, and the page's Firebase ID "
             "tokens, verified in full), firebase (a public entrance: Firebase ID tokens only, verified in full) or "
             "local (the developer token)",
             "google", (API,), TERRAFORM,
             field="auth_mode", parse=_auth_mode),
    Variable("TRAINYARD_AUTH_AUDIENCE", "the audiences (comma-separated) a caller's ID token may carry: the API's "
             "URLs and the Google Cloud CLI's client id; none configured refuses every token", "", (API,), TERRAFORM,
             field="auth_audience"),
    Variable("TRAINYARD_ALLOWED_DOMAIN", "e-mail domain of the people who may use the API (a Google user token's hd "
             "claim must equal it too); required with the vertex backend: the API refuses to start without it, "
             "and with none every person is refused", "", (API,), TERRAFORM,
             field="allowed_domain"),
    Variable("TRAINYARD_ADMINS", "e-mail addresses (comma-separated, any case) of the operators the admin routes "
             "admit (dead-letter list and replay, /api/admin/...); everyone else gets 403; none: nobody. The "
             "submitter compiles a free-SQL dataset only if one of them wrote it",
             "", (API, SUBMITTER), TERRAFORM,
             field="admins", parse=_emails),
    Variable("TRAINYARD_TEAMS", "the deployment's teams (JSON: name -> members and roles, model names, endpoints, "
             "datasets, buckets, budget, schedule limits; shared/domain/teams.py, docs/security.md); unset: locally, "
             "one `demo` team whose admin is the developer; in the cloud, no team (only TRAINYARD_ADMINS may act)",
             "", (API, SUBMITTER, SCHEDULER, RUN_COMMANDS), TERRAFORM,
             field="teams", parse=_teams),
    Variable("TRAINYARD_AUDIT_RETENTION_DAYS", "days an audit record (every state-changing API request: "
             "GET /api/admin/audit) is kept before Firestore's TTL policy deletes it (terraform/firestore.tf, "
             "var.audit_retention_days)", "400", (API,), TERRAFORM,
             field="audit_retention_days", parse=_count),
    Variable("TRAINYARD_CURSOR_KEY", "the key (32 characters or more) the API signs its opaque page tokens with "
             "(HMAC-SHA256; shared/page_tokens.py); in the cloud from Secret Manager (the API refuses to start "
             "without it); locally the stack makes one per .local directory, else each process draws its own",
             "", (API,), TERRAFORM,
             field="cursor_key", parse=_cursor_key, secret=True),
    Variable("TRAINYARD_GROUPS", "the local stack's group memberships (JSON: e-mail -> list of group addresses), "
             "matched against teams' `group:` members; unset: in the cloud, the Cloud Identity Groups API answers "
             "(shared/adapters/group_directory.py); locally, nobody is in a group", "", (API,), LOCAL,
             field="groups", parse=_groups),
    Variable("TRAINYARD_DEV_IDENTITY", "the local stack's developer identity (created_by)", "developer@localhost",
             (API, STACK), LOCAL,
             field="dev_identity"),
    Variable("TRAINYARD_DEV_TOKEN", "the local stack's developer bearer token (the stack and the CLI default to "
             f"{LOCAL_DEV_TOKEN}; the API accepts none unless it is set); refused with the vertex backend, "
             "as TRAINYARD_AUTH=local is", "", (API, STACK, CLI), LOCAL,
             field="dev_token", parse=_dev_token),
    # ------------------------------------------------------------------ the dashboard page
    Variable("TRAINYARD_DASHBOARD_DIR", "the built dashboard", "dashboard/dist or dashboard_dist beside shared/",
             (API,), OPTIONAL,
             field="dashboard_dir", unset=lambda r: ""),
    Variable("TRAINYARD_MODEL_NAME", "the recommender this deployment trains, named in the page's header "
             "(\"Model: …\"); its runs are numbered per model", "GOOGLE_CLOUD_PROJECT", (API, SCHEDULER), OPTIONAL,
             field="model_name", unset=lambda r: r.project),
    Variable("TRAINYARD_FIREBASE_PROJECT_ID", "Firebase project of the page's sign-in and Firestore",
             "GOOGLE_CLOUD_PROJECT", (API,), OPTIONAL,
             field="firebase.projectId", unset=lambda r: r.project),
    Variable("TRAINYARD_FIREBASE_API_KEY", "Firebase web API key of the page", "", (API,), OPTIONAL,
             field="firebase.apiKey"),
    Variable("TRAINYARD_FIREBASE_AUTH_DOMAIN", "Firebase Auth domain of the page", "{project}.firebaseapp.com",
             (API,), OPTIONAL,
             field="firebase.authDomain", unset=lambda r: f"{r.project}.firebaseapp.com"),
    Variable("TRAINYARD_FIREBASE_APP_ID", "Firebase web app id of the page", "", (API,), OPTIONAL,
             field="firebase.appId"),
    Variable("FIREBASE_AUTH_EMULATOR_HOST", "the Firebase Auth emulator (host:port): the page signs in there and the "
             "API accepts its unsigned tokens; refused with the vertex backend", "", (API,), LOCAL,
             field="firebase_auth_emulator_host", parse=_emulator_host),
    # ------------------------------------------------------------------ consumers
    Variable("TRAINYARD_PROGRESS_MIN_INTERVAL_S", "at most one run-document write per run this often, per epoch "
             "stream (every epoch is kept in history/)", "1.0", (PIPELINE_EVENTS,), OPTIONAL,
             field="progress_min_interval_s", parse=_float),
    Variable("TRAINYARD_RECONCILE_RUNNING_AFTER_S", "the reconciler reads the pipeline job of a run running "
             "unchanged this long and applies it (a lost final event)", "600", (PIPELINE_EVENTS,), OPTIONAL,
             field="reconcile_running_after_s", parse=_float),
    Variable("TRAINYARD_RECONCILE_CANCELLING_AFTER_S", "the reconciler reads the job of a run cancelling unchanged "
             "this long, and sends the cancel again while the job is not cancelled", "600", (PIPELINE_EVENTS,),
             OPTIONAL,
             field="reconcile_cancelling_after_s", parse=_float),
    Variable("TRAINYARD_RECONCILE_COMMAND_AFTER_S", "the reconciler sends again the command of a deployment "
             "deploying or a push-anyway pushing unchanged this long (beyond run-commands' 600 s timeout)", "1800",
             (PIPELINE_EVENTS,), OPTIONAL,
             field="reconcile_command_after_s", parse=_float),
    Variable("TRAINYARD_DELETE_GRACE_DAYS", "how long a deleted run stays restorable (POST …/restore), its document "
             "and artifacts kept; the reconciler purges both after it (at least 1)", "7", (API,), OPTIONAL,
             field="delete_grace_days", parse=_days),
    Variable("TRAINYARD_SCHEDULER_BACKEND", "cloud-scheduler (a Cloud Scheduler job per schedule: the API makes, "
             "pauses, resumes and deletes it, pipeline_events pauses it on auto-pause, the scheduler deletes a "
             "one-time schedule's after it fired) or local (scripts/ticker.py publishes)",
             "cloud-scheduler when the pipeline backend is vertex, else local", (API, PIPELINE_EVENTS, SCHEDULER),
             TERRAFORM,
             field="scheduler_backend", unset=lambda r: "cloud-scheduler" if r.pipeline_backend == "vertex" else "local"),
    Variable("TRAINYARD_SCHEDULER_LOCATION", "location of the Cloud Scheduler jobs", "TRAINYARD_REGION",
             (API, PIPELINE_EVENTS, SCHEDULER), TERRAFORM,
             field="scheduler_location", unset=lambda r: r.region),
    Variable("TRAINYARD_DEPLOY_MACHINE_TYPE", "machine type of a deployed model's replicas", "n1-standard-4",
             (RUN_COMMANDS,), OPTIONAL,
             field="deploy_machine_type"),
    Variable("TRAINYARD_DEPLOY_WAIT_S", "how long one delivery follows a deployment before a redelivery resumes it",
             "480", (RUN_COMMANDS,), OPTIONAL,
             field="deploy_wait_s", parse=_float),
    Variable("TRAINYARD_IMPORT_MLFLOW_HOSTS", "the MLflow tracking servers (host, or host:port; comma-separated) "
             "POST /api/experiments:import-from may read: the API fetches the URL its caller gives, so only these "
             "(docs/import.md); redirects elsewhere are refused (Terraform: import_mlflow_hosts). The CLI reads any "
             "server from the user's machine",
             "none with the vertex backend; localhost and 127.0.0.1 locally", (API,), OPTIONAL,
             field="import_mlflow_hosts", parse=_hosts,
             unset=lambda r: () if r.pipeline_backend == "vertex" else ("localhost", "127.0.0.1")),
    Variable("TRAINYARD_IMPORT_VERTEX_PROJECTS", "the projects (comma-separated) whose Vertex AI Experiments "
             "POST /api/experiments:import-from may read, as the API's service account (it needs "
             "roles/aiplatform.viewer there; Terraform: this project and import_vertex_projects)", "GOOGLE_CLOUD_PROJECT",
             (API,), OPTIONAL,
             field="import_vertex_projects", parse=_names, unset=lambda r: (r.project,)),
    Variable("TRAINYARD_IMPORT_REQUEST_S", "how long one POST /api/experiments:import-from goes on starting runs "
             "before it answers with the part done and `next_after` (the dialog and `trainyard catalog import "
             "--by-api` ask again from there until the import is whole): below the API function's 60 s timeout",
             "30", (API,), OPTIONAL,
             field="import_request_s", parse=_float),
    Variable("TRAINYARD_GPU_USAGE_CACHE_S", "how long the GPU quota pre-flight reuses a Cloud Monitoring quota-usage "
             "reading (per GPU metric and region; Monitoring samples it every 60 s)", "60", (API,), OPTIONAL,
             field="gpu_usage_cache_s", parse=_float),
    Variable("TRAINYARD_PREFLIGHT_DEADLINE_S", "how long a create waits for the GPU quota pre-flight; past it the run "
             "is stored with a warning that the quota was not checked, and the check finishes in the background",
             "1.5", (API,), OPTIONAL,
             field="preflight_deadline_s", parse=_float),
    Variable("LOG_EXECUTION_ID", "functions-framework adds each request's execution id to its log entries", "",
             FUNCTIONS_FRAMEWORK, TERRAFORM),
    # ------------------------------------------------------------------ the local twin only
    Variable("TRAINYARD_LOCAL_DIR", "state and logs of the local stack", ".local",
             (API, SUBMITTER, PIPELINE_EVENTS, RUN_COMMANDS, PIPELINE_SERVICE, PREDICTION_SERVER, STACK), LOCAL,
             field="local_dir", parse=_directory, unset=lambda r: str((REPO_ROOT / ".local").resolve())),
    Variable("TRAINYARD_LOCAL_PIPELINE_URL", "the local pipeline service", "http://127.0.0.1:8090",
             (API, SUBMITTER, PIPELINE_EVENTS, RUN_COMMANDS), LOCAL,
             field="local_pipeline_url"),
    Variable("TRAINYARD_LOCAL_REGISTRY_DIR", "the local model registry", "{TRAINYARD_LOCAL_DIR}/registry",
             (SUBMITTER, RUN_COMMANDS, PIPELINE_SERVICE), LOCAL,
             field="local_registry_dir", unset=lambda r: str(Path(r.local_dir) / "registry")),
    Variable("TRAINYARD_LOCAL_ENDPOINTS_DIR", "the local endpoints", "{TRAINYARD_LOCAL_DIR}/endpoints",
             (API, RUN_COMMANDS, PREDICTION_SERVER), LOCAL,
             field="local_endpoints_dir", unset=lambda r: str(Path(r.local_dir) / "endpoints")),
    Variable("TRAINYARD_PREDICTION_URL", "the local prediction server", "http://127.0.0.1:8089",
             (RUN_COMMANDS,), LOCAL,
             field="prediction_url", parse=_url),
    Variable("TRAINYARD_VERTEX_EMULATOR_HOST", "host:port of a Vertex AI stand-in spoken to over plain gRPC "
             "(the rehearsal's protocol fakes); unset: {region}-aiplatform.googleapis.com", "",
             (API, SUBMITTER, PIPELINE_EVENTS, RUN_COMMANDS), LOCAL,
             field="vertex_emulator_host"),
    Variable("TRAINYARD_SCHEDULER_EMULATOR_HOST", "host:port of a Cloud Scheduler stand-in spoken to over plain gRPC "
             "(the rehearsal's protocol fakes)", "", (API, PIPELINE_EVENTS, SCHEDULER), LOCAL,
             field="scheduler_emulator_host"),
    Variable("FIRESTORE_EMULATOR_HOST", "the Firestore emulator (read by the client library and the page config)",
             "", _ALL_CLIENTS + (PREDICTION_SERVER,), LOCAL,
             field="firestore_emulator_host"),
    Variable("PUBSUB_EMULATOR_HOST", "the Pub/Sub emulator (read by the client library)", "", _ALL_CLIENTS, LOCAL),
    Variable("TRAINYARD_TICKER_INTERVAL_S", "how often the local ticker looks for due schedules", "0.5",
             (TICKER,), LOCAL,
             field="ticker_interval_s", parse=_float),
    Variable("TRAINYARD_WATCHER_INTERVAL_S", "how often the local watcher (scripts/watcher.py) lists the folders "
             "of data-triggered schedules; a file is reported once unchanged for one interval", "1.0",
             (TICKER,), LOCAL, field="watcher_interval_s", parse=_float),
    Variable("TRAINYARD_RECONCILE_INTERVAL_S", "how often the local ticker publishes to `reconcile` (Cloud "
             "Scheduler's reconcile job in the cloud: terraform/reconciler.tf)", "60", (TICKER,), LOCAL,
             field="reconcile_interval_s", parse=_float),
    Variable("TRAINYARD_FIRESTORE_PORT", "the local stack's Firestore emulator port", "8085", (STACK,), LOCAL),
    Variable("TRAINYARD_PUBSUB_PORT", "the local stack's Pub/Sub emulator port", "8086", (STACK,), LOCAL),
    Variable("TRAINYARD_API_PORT", "the local API's port", "8080", (STACK,), LOCAL),
    Variable("TRAINYARD_SUBMITTER_PORT", "the local submitter's port", "8081", (STACK,), LOCAL),
    Variable("TRAINYARD_EVENTS_PORT", "the local pipeline_events function's port", "8082", (STACK,), LOCAL),
    Variable("TRAINYARD_PROGRESS_PORT", "the local training-progress function's port", "8083", (STACK,), LOCAL),
    Variable("TRAINYARD_SCHEDULER_PORT", "the local scheduler function's port", "8084", (STACK,), LOCAL),
    Variable("TRAINYARD_RUN_COMMANDS_PORT", "the local run-commands consumer's port", "8087", (STACK,), LOCAL),
    Variable("TRAINYARD_RECONCILER_PORT", "the local reconciler's port", "8088", (STACK,), LOCAL),
    Variable("TRAINYARD_DATA_TRIGGERS_PORT", "the local data-landed consumer's port", "8091", (STACK,), LOCAL),
    Variable("TRAINYARD_PREDICTION_PORT", "the local prediction server's port", "8089", (STACK,), LOCAL),
    Variable("TRAINYARD_PIPELINE_PORT", "the local pipeline service's port", "8090", (STACK, PIPELINE_SERVICE), LOCAL),
    Variable("TRAINYARD_LOCAL_MAX_RUNNING_JOBS", "how many pipeline jobs the local pipeline service runs at once; "
             "later jobs wait PIPELINE_STATE_QUEUED in creation order", "1", (PIPELINE_SERVICE,), LOCAL,
             field="local_max_running_jobs", parse=_count),
    Variable("TRAINYARD_DASHBOARD_URL", "the Training dashboard's URL: notifications link a run as {url}#run={id}",
             "http://127.0.0.1:8080/training", (RUN_COMMANDS,), TERRAFORM,
             field="dashboard_url"),
    Variable("TRAINYARD_NOTIFY_SECRETS", "the local twin's webhook signing secrets, a JSON object {name: secret} "
             "(in the cloud a webhook's `secret` names a Secret Manager secret)", "", (RUN_COMMANDS,), LOCAL,
             field="notify_secrets"),
    Variable("TRAINYARD_NOTIFY_SIGNING_SECRETS", "which webhook URLs each signing secret may sign for, a JSON object "
             "{name: [URL prefix, ...]} (each prefix https://host/...); a webhook naming a secret for a URL outside "
             "its prefixes is refused (400) and not sent; unset: no webhook may be signed (Terraform: "
             "notification_secrets)", "", (API, RUN_COMMANDS), TERRAFORM,
             field="notify_signing_secrets", parse=_signing_secrets),
    Variable("TRAINYARD_NOTIFY_LOCAL_RECEIVERS", "let webhooks be http:// and reach loopback receivers (127.0.0.1, "
             "::1, localhost), as the local twin's tests do; refused with TRAINYARD_PIPELINE_BACKEND=vertex",
             "false", (API, RUN_COMMANDS), LOCAL,
             field="notify_local_receivers", parse=_local_receivers),
    Variable("TRAINYARD_PRICE_TABLE", "a JSON price table replacing shared/domain/pricing/prices.json (same shape) for the "
             "runs' estimated cost and the spend guard's admission estimate — your contract's prices", "",
             (PIPELINE_EVENTS, API, SCHEDULER), OPTIONAL,
             field="price_table"),
    Variable("TRAINYARD_SPEND_EPOCH_SECONDS", "the spend guard's Train seconds per epoch (at 100 % of the data) for a "
             "team with no measured run yet; set it from one of your runs (docs/cost.md, \"Before a run\")", "600",
             (API, SCHEDULER), OPTIONAL,
             field="spend_epoch_seconds", parse=_above_zero),
    Variable("TF_CONFIG", "the training cluster (JSON: cluster = chief/worker addresses, task = this replica) Vertex AI "
             "gives every replica of a Trainer job on several machines (gpu_config.machine_count); unset: one machine",
             "", (TRAINER,), VERTEX),
    # Vertex sets these three in a CustomJob that names a TensorBoard instance (cloud.google.com/vertex-ai/docs/
    # experiments/tensorboard-training); the Trainer writes its event files there and names the experiment.
    Variable("AIP_TENSORBOARD_LOG_DIR", "where the Trainer writes its TensorBoard event files on Vertex (the CustomJob's "
             "base_output_directory/logs/, uploaded to the TensorBoard instance as written); unset: the run's "
             "artifacts, tensorboard/", "", (TRAINER,), VERTEX),
    Variable("AIP_TENSORBOARD_RESOURCE_NAME", "the TensorBoard instance the Trainer's CustomJob uploads to", "",
             (TRAINER,), VERTEX),
    Variable("CLOUD_ML_JOB_ID", "the Trainer's CustomJob id: the Vertex TensorBoard experiment of its event files", "",
             (TRAINER,), VERTEX),
    Variable("TRAINYARD_API_URL", "the API the CLI calls", "http://127.0.0.1:8080", (CLI,), LOCAL),
    Variable("TRAINYARD_TOKEN", "the CLI's bearer token (default: the developer token locally, else "
             "`gcloud auth print-identity-token`)", "", (CLI,), LOCAL),
    Variable("NO_COLOR", "set (to anything) for a CLI without colours even on a terminal (https://no-color.org)",
             "", (CLI,), LOCAL),
)
BY_NAME = {v.name: v for v in VARIABLES}


def read(name: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """The raw value of one declared variable ('' when unset). Undeclared names are a bug."""
    if name not in BY_NAME:
        raise KeyError(f"{name} is not declared in shared/settings.py")
    return ((os.environ if environ is None else environ).get(name) or "").strip()


def read_or_default(name: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """The raw value of one declared variable, else its declared default: for what reads a variable
    without the typed settings (the local stack's ports and identity)."""
    return read(name, environ) or BY_NAME[name].default


def required_by(role: str) -> list[Variable]:
    """What Terraform must set for a deployable."""
    return [v for v in VARIABLES if role in v.readers and v.cloud == TERRAFORM]


def read_by(role: str) -> list[Variable]:
    return [v for v in VARIABLES if role in v.readers]


# --------------------------------------------------------------------------- the typed settings


class _Reading:
    """One read of the environment: each field's value, parsed when first asked for (by `Settings` or by
    another field's rule), so a rule may depend on any other setting whatever the declaration order."""

    def __init__(self, environ: Optional[Mapping[str, str]]):
        self._environ, self._values = environ, {}

    def _value(self, v: Variable):
        raw = read(v.name, self._environ)
        if not raw and v.unset is not None:
            return v.unset(self)
        return v.parse(raw or v.default, v.name, self)

    def __getattr__(self, attribute: str):
        if attribute not in _FIELDS:
            raise AttributeError(attribute)
        if attribute not in self._values:
            variables = _FIELDS[attribute]
            self._values[attribute] = (
                {v.field.partition(".")[2]: self._value(v) for v in variables} if "." in variables[0].field
                else self._value(variables[0]))
        return self._values[attribute]


# attribute => its variables (one; or several keys of one dict attribute, e.g. firebase.*), in declaration order
_FIELDS: dict[str, list[Variable]] = {}
for _v in VARIABLES:
    if _v.field:
        _FIELDS.setdefault(_v.field.partition(".")[0], []).append(_v)


class _SettingsBehaviour:
    @property
    def progress_topic_path(self) -> str:
        from shared.contract import topics

        return f"projects/{self.project}/topics/{topics.TRAINING_PROGRESS}"

    @property
    def is_cloud(self) -> bool:
        return self.pipeline_backend == "vertex"

    def check_api_identity(self) -> None:
        """What the API refuses to start with: in the cloud, no organisation domain would admit any Google
        account (review M3). Checked when the API is built (shared/http/app.create_app), not here for every
        process: only the API reads TRAINYARD_ALLOWED_DOMAIN (Terraform sets it for the API alone)."""
        if self.is_cloud and not self.allowed_domain:
            raise ValueError("TRAINYARD_ALLOWED_DOMAIN is empty with TRAINYARD_PIPELINE_BACKEND=vertex: the API "
                             "would admit any Google account; set it (Terraform variable org_domain)")

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        reading = _Reading(environ)
        reading.pipeline_backend  # first: a wrong backend is the error to report, and most rules depend on it
        return cls(**{attribute: getattr(reading, attribute) for attribute in _FIELDS})


def _attribute(variables: list[Variable]) -> tuple:
    v = variables[0]
    kind = "dict" if "." in v.field else v.parse.__annotations__.get("return", "str")
    return (v.field.partition(".")[0], kind, field(repr=not v.secret))


# The typed settings: one frozen attribute per declared field, built from VARIABLES (no second list to keep).
Settings = make_dataclass("Settings", [_attribute(variables) for variables in _FIELDS.values()],
                          bases=(_SettingsBehaviour,), frozen=True, namespace={"__module__": __name__})



@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environ()


# --------------------------------------------------------------------------- processes started from here


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment plus overrides, for a child process (the local stack's processes)."""
    return {**os.environ, **overrides}


def export(values: Mapping[str, str]) -> None:
    """Make values visible to this process's client libraries (e.g. the emulator hosts for the Google
    clients a test or a script creates here), and forget the settings read before."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise KeyError(f"not declared in shared/settings.py: {unknown}")
    os.environ.update(values)
    get_settings.cache_clear()


def markdown_table() -> str:
    lines = ["| variable | meaning | default | read by | in the cloud |", "| --- | --- | --- | --- | --- |"]
    where = {TERRAFORM: "set by Terraform", OPTIONAL: "default (Terraform may set it)", LOCAL: "local twin only",
             VERTEX: "set by Vertex AI"}
    for v in VARIABLES:
        default = f"`{v.default}`" if v.default else ""
        lines.append(f"| `{v.name}` | {v.meaning} | {default} | {', '.join(v.readers)} | {where[v.cloud]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
