# Trainyard on Google Cloud: everything a fresh project needs. See docs/deploy.md.
#
# Files: main.tf (APIs, names, service agents), iam.tf (service accounts and every grant),
# pubsub.tf (topics + dead letters), functions.tf (light functions and Cloud Run consumers),
# storage.tf (buckets, Artifact Registry), firestore.tf (database, indexes, rules),
# logging.tf (Vertex pipeline events -> pipeline-events).

locals {
  repo_root = coalesce(var.repo_root, abspath("${path.module}/.."))

  artifacts_bucket_name       = coalesce(var.artifacts_bucket_name, "${var.project_id}-trainyard-artifacts")
  pipeline_root_bucket_name   = coalesce(var.pipeline_root_bucket_name, "${var.project_id}-trainyard-pipeline-root")
  function_source_bucket_name = coalesce(var.function_source_bucket_name, "${var.project_id}-trainyard-function-source")

  gpu_image = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_registry_repository}/${var.gpu_image_name}:${var.gpu_image_tag}"

  # The same names as shared/topics.py.
  topics = ["run-submit", "pipeline-events", "training-progress", "schedule-trigger", "run-commands"]

  required_apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudquotas.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "dataflow.googleapis.com",
    "eventarc.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ]

  # Settings every function/service reads (shared/settings.py).
  common_env = {
    GOOGLE_CLOUD_PROJECT               = var.project_id
    TRAINYARD_REGION                   = var.region
    TRAINYARD_ARTIFACTS_ROOT           = "gs://${local.artifacts_bucket_name}/training"
    TRAINYARD_PIPELINE_ROOT            = "gs://${local.pipeline_root_bucket_name}"
    TRAINYARD_PIPELINE_BACKEND         = "vertex"
    TRAINYARD_PIPELINE_SERVICE_ACCOUNT = google_service_account.sa["pipeline"].email
    TRAINYARD_AUTH                     = "google"
    TRAINYARD_ALLOWED_DOMAIN           = var.org_domain
    TRAINYARD_GPU_IMAGE                = local.gpu_image
    LOG_EXECUTION_ID                   = "true"
  }
}

resource "google_project_service" "enabled" {
  for_each = toset(local.required_apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Service agents that need explicit grants: Pub/Sub (dead-lettering, OIDC tokens for pushes) and
# Cloud Scheduler (publishes the schedule jobs' messages).
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
