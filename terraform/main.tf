# Trainyard on Google Cloud: everything a fresh project needs. See docs/deploy.md.
#
# Files: main.tf (APIs, names, service agents, each deployable's environment), iam.tf (service
# accounts and every grant), pubsub.tf (topics, dead letters, the consumers' push subscriptions),
# functions.tf (light functions and Cloud Run consumers), network.tf (the Dataflow workers' network),
# storage.tf (buckets, Artifact Registry), firestore.tf (database, indexes, rules), logging.tf
# (Vertex pipeline events -> pipeline-events), firebase.tf (the dashboard's sign-in and its public entrance).

locals {
  repo_root = coalesce(var.repo_root, abspath("${path.module}/.."))

  artifacts_bucket_name       = coalesce(var.artifacts_bucket_name, "${var.project_id}-trainyard-artifacts")
  pipeline_root_bucket_name   = coalesce(var.pipeline_root_bucket_name, "${var.project_id}-trainyard-pipeline-root")
  function_source_bucket_name = coalesce(var.function_source_bucket_name, "${var.project_id}-trainyard-function-source")
  build_staging_bucket_name   = "${var.project_id}-trainyard-build"

  # The images cloudbuild.yaml builds and pushes (one tag for all: they come from one commit).
  image_repository = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_registry_repository}"
  # image_tag is null only for the first, targeted apply (docs/deploy.md step 6), which runs none of these;
  # terraform_data.image_tag_is_set stops a full apply without it.
  image_tag      = coalesce(var.image_tag, "unset")
  gpu_image      = "${local.image_repository}/${var.gpu_image_name}:${local.image_tag}"
  dataflow_image = "${local.image_repository}/${var.dataflow_image_name}:${local.image_tag}"
  serving_image  = coalesce(var.serving_image, "${local.image_repository}/${var.serving_image_name}:${local.image_tag}")

  # The same names as shared/contract/topics.py.
  topics = ["run-submit", "pipeline-events", "training-progress", "schedule-trigger", "run-commands", "reconcile", "data-landed"]

  required_apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "billingbudgets.googleapis.com", # the Cloud Billing budget (budget.tf), when billing_account is set
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    # The API asks the Cloud Identity Groups API for a caller's groups (teams' `group:` members,
    # shared/adapters/group_directory.py). What it may see is granted in the Google Admin console
    # (a role such as Groups Reader for the API's service account), not by project IAM.
    "cloudidentity.googleapis.com",
    "cloudquotas.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "dataflow.googleapis.com",
    "firebase.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "identitytoolkit.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ]

  # Service agents, by e-mail built from the project number: google_project_service_identity can
  # return an empty e-mail (hashicorp/terraform-provider-google#18649); the resources below still
  # make sure the agents exist before anything is granted to them.
  project_number        = data.google_project.this.number
  pubsub_agent_email    = "service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  scheduler_agent_email = "service-${local.project_number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"

  # Each deployable's environment: exactly what shared/settings.py declares it reads and Terraform
  # must set (tests/rehearsal checks this table against the declaration, both ways).
  base_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    LOG_EXECUTION_ID     = "true"
  }
  cloud_env = merge(local.base_env, {
    TRAINYARD_REGION           = var.region
    TRAINYARD_PIPELINE_BACKEND = "vertex"
  })
  # The URLs people and clients use (outputs api_url, dashboard_url; docs/deploy.md "Which URL is for
  # what"). A gen2 function is the Cloud Run service of the same name; besides its hashed
  # <name>-<hash>.a.run.app URL (service_config[0].uri, known only after apply) the same service answers
  # at the deterministic https://SERVICE-PROJECT_NUMBER.REGION.run.app, known before apply
  # (https://cloud.google.com/run/docs/triggering/https-request#deterministic: available while the DNS
  # segment "<name>-<project number>" is at most 63 characters). One URL each, used everywhere: the
  # audience clients mint for, the sign-in domain, the links notifications carry.
  api_name      = "trainyard-api"
  web_name      = "trainyard-web"
  api_url       = "https://${local.api_name}-${local.project_number}.${var.region}.run.app"
  web_url       = "https://${local.web_name}-${local.project_number}.${var.region}.run.app"
  dashboard_url = "${local.web_url}/training"

  # The audiences an ID token that passed Cloud Run IAM may carry (shared/http/identity.py): the API's
  # cloudfunctions.net URL and api_url, for service accounts minting tokens for it, and the Google
  # Cloud CLI's client id, the audience of a user's `gcloud auth print-identity-token`.
  api_audiences = concat([
    "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.api_name}",
    local.api_url,
  ], var.api_user_audiences)
  scheduler_env = {
    TRAINYARD_SCHEDULER_BACKEND  = "cloud-scheduler"
    TRAINYARD_SCHEDULER_LOCATION = var.region
  }
  # Who may do what (shared/domain/teams.py): every deployable that checks a team's role or limits.
  teams_env = { TRAINYARD_TEAMS = jsonencode(var.teams) }
  environment = {
    api = merge(local.cloud_env, local.scheduler_env, local.teams_env, {
      TRAINYARD_AUTH           = "google"
      TRAINYARD_AUTH_AUDIENCE  = join(",", local.api_audiences)
      TRAINYARD_ALLOWED_DOMAIN = var.org_domain
      TRAINYARD_ADMINS         = join(",", var.admin_emails) # the admin routes (shared/http/admin_routes.py)
      # Each audit record's expire_at, which the TTL policy on audit_records (firestore.tf) acts on.
      TRAINYARD_AUDIT_RETENTION_DAYS = tostring(var.audit_retention_days)
      # Which URLs each webhook signing secret may sign for (notifications.tf): checked when a run is made.
      TRAINYARD_NOTIFY_SIGNING_SECRETS = jsonencode(var.notification_secrets)
      TRAINYARD_MODEL_NAME             = coalesce(var.model_name, var.project_id)
      # What the page's Import experiments may read (docs/import.md): listed tracking hosts, listed projects.
      TRAINYARD_IMPORT_MLFLOW_HOSTS    = join(",", var.import_mlflow_hosts)
      TRAINYARD_IMPORT_VERTEX_PROJECTS = join(",", distinct(concat([var.project_id], var.import_vertex_projects)))
      # The page's Firebase web configuration (firebase.tf), handed to it by /training/config.json.
      TRAINYARD_FIREBASE_PROJECT_ID  = var.project_id
      TRAINYARD_FIREBASE_API_KEY     = data.google_firebase_web_app_config.dashboard.api_key
      TRAINYARD_FIREBASE_APP_ID      = google_firebase_web_app.dashboard.app_id
      TRAINYARD_FIREBASE_AUTH_DOMAIN = data.google_firebase_web_app_config.dashboard.auth_domain
    })
    submitter = merge(local.cloud_env, local.teams_env, {
      TRAINYARD_ADMINS                   = join(",", var.admin_emails) # free SQL compiles only if an admin wrote it (shared/domain/data_access.py)
      TRAINYARD_ARTIFACTS_ROOT           = "gs://${google_storage_bucket.bucket["artifacts"].name}/training"
      TRAINYARD_SUBMIT_LEASE_SECONDS     = tostring(local.submit_lease_seconds)
      TRAINYARD_PIPELINE_ROOT            = "gs://${google_storage_bucket.bucket["pipeline_root"].name}"
      TRAINYARD_PIPELINE_SERVICE_ACCOUNT = google_service_account.sa["pipeline"].email
      TRAINYARD_VERTEX_TENSORBOARD       = google_vertex_ai_tensorboard.runs.name
      TRAINYARD_PIPELINE_IMAGE           = local.gpu_image
      TRAINYARD_DATAFLOW_IMAGE           = local.dataflow_image
      TRAINYARD_DATAFLOW_TEMP            = "gs://${google_storage_bucket.bucket["pipeline_root"].name}/dataflow-tmp"
      TRAINYARD_DATAFLOW_SUBNETWORK      = local.dataflow_subnetwork
      TRAINYARD_SERVING_IMAGE            = local.serving_image
      # The pipeline root's lifecycle age (storage.tf): a retry too old for its cached outputs runs uncached.
      TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS = tostring(var.pipeline_root_retention_days)
    })
    # Also the reconciler's (the same source; it re-queues a run submitting past the submit lease).
    pipeline_events = merge(local.cloud_env, local.scheduler_env, {
      TRAINYARD_SUBMIT_LEASE_SECONDS = tostring(local.submit_lease_seconds)
    })
    # A slot's run draws its run_number from the model's counter, as the API's runs do (shared/domain/run_numbers.py).
    scheduler = merge(local.base_env, local.scheduler_env, local.teams_env, { TRAINYARD_MODEL_NAME = coalesce(var.model_name, var.project_id) })
    run_commands = merge(local.cloud_env, local.teams_env, {
      TRAINYARD_SERVING_IMAGE = local.serving_image
      # A BatchPredictionJob runs as it, not as a default agent a hardened project may not grant (batch_prediction.py).
      TRAINYARD_PIPELINE_SERVICE_ACCOUNT = google_service_account.sa["pipeline"].email
      # Notifications link a run to the dashboard where people sign in: the public web entrance, not
      # trainyard-api, which Cloud Run IAM closes to a browser (review N11).
      TRAINYARD_DASHBOARD_URL = local.dashboard_url
      # ... and checked again when a notification is sent (the bindings may have changed since).
      TRAINYARD_NOTIFY_SIGNING_SECRETS = jsonencode(var.notification_secrets)
    })
  }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "enabled" {
  for_each = toset(local.required_apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Service agents that get explicit grants: Pub/Sub (dead-lettering, the OIDC tokens of pushes) and
# Cloud Scheduler (publishes the schedule jobs' messages). These make sure they exist.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}

resource "google_project_service_identity" "cloudscheduler" {
  provider = google-beta

  project = var.project_id
  service = "cloudscheduler.googleapis.com"

  depends_on = [google_project_service.enabled]
}

# A full apply deploys the images: it needs the immutable tag the build pushed (security review LOW: the
# default was the mutable `latest`). The first, targeted apply (docs/deploy.md step 6) does not include this.
resource "terraform_data" "image_tag_is_set" {
  input = var.image_tag

  lifecycle {
    precondition {
      condition     = var.image_tag != null
      error_message = "Set image_tag to the tag `gcloud builds submit` pushed (docs/deploy.md step 7): terraform -chdir=terraform output -raw image_build_command prints the build."
    }
  }
}
