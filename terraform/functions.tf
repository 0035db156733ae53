# The light functions (Cloud Functions gen2, Python 3.11, source = functions/<name>/ + shared/) and
# the heavy consumers (Cloud Run from the GPU image). Every consumer is reached by a Terraform-owned
# push subscription (pubsub.tf) whose identity alone may invoke it.

locals {
  functions_dir = "${local.repo_root}/functions"
  shared_dir    = "${local.repo_root}/shared"
  build_sa_id   = google_service_account.sa["build"].id
}

# HTTP API (/api/...). Requires authentication: Cloud Run's front end checks the caller's Google ID
# token and roles/run.invoker (api_invoker_members; never allUsers) before a request reaches the code,
# which then checks the caller's verified e-mail against TRAINYARD_ALLOWED_DOMAIN.
module "fn_api" {
  source = "./modules/light_function"

  project_id               = var.project_id
  region                   = var.region
  name                     = local.api_name
  description              = "Trainyard HTTP API (/api/...)."
  source_dir               = "${local.functions_dir}/api"
  shared_dir               = local.shared_dir
  source_bucket            = google_storage_bucket.function_source.name
  entry_point              = "handle"
  service_account_email    = google_service_account.sa["api"].email
  build_service_account_id = local.build_sa_id
  environment_variables    = local.environment["api"]
  secret_env               = local.api_secrets
  ingress_settings         = "ALLOW_ALL"
  invokers                 = { for member in var.api_invoker_members : member => member }
  timeout_seconds          = 60
  max_instance_count       = 20
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation, terraform_data.cursor_key_version,
  google_secret_manager_secret_iam_member.cursor_key_reader]
}

module "fn_pipeline_events" {
  source = "./modules/light_function"

  project_id               = var.project_id
  region                   = var.region
  name                     = "trainyard-pipeline-events"
  description              = "Vertex pipeline job/task events -> run status and stages."
  source_dir               = "${local.functions_dir}/pipeline_events"
  shared_dir               = local.shared_dir
  source_bucket            = google_storage_bucket.function_source.name
  entry_point              = "on_pipeline_event"
  service_account_email    = google_service_account.sa["pipeline_events"].email
  build_service_account_id = local.build_sa_id
  environment_variables    = local.environment["pipeline_events"]
  invokers                 = { push = google_service_account.push["pipeline_events"].member }
  timeout_seconds          = local.consumers["pipeline_events"].ack_deadline_seconds
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

module "fn_training_progress" {
  source = "./modules/light_function"

  project_id               = var.project_id
  region                   = var.region
  name                     = "trainyard-training-progress"
  description              = "Per-epoch training metrics -> run progress."
  source_dir               = "${local.functions_dir}/pipeline_events"
  shared_dir               = local.shared_dir
  source_bucket            = google_storage_bucket.function_source.name
  entry_point              = "on_training_progress"
  service_account_email    = google_service_account.sa["pipeline_events"].email
  build_service_account_id = local.build_sa_id
  environment_variables    = local.environment["pipeline_events"]
  invokers                 = { push = google_service_account.push["training_progress"].member }
  timeout_seconds          = local.consumers["training_progress"].ack_deadline_seconds
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

module "fn_scheduler" {
  source = "./modules/light_function"

  project_id               = var.project_id
  region                   = var.region
  name                     = "trainyard-scheduler"
  description              = "Schedule slot -> training run (idempotent) -> run-submit."
  source_dir               = "${local.functions_dir}/scheduler"
  shared_dir               = local.shared_dir
  source_bucket            = google_storage_bucket.function_source.name
  entry_point              = "on_schedule_trigger"
  service_account_email    = google_service_account.sa["scheduler"].email
  build_service_account_id = local.build_sa_id
  environment_variables    = local.environment["scheduler"]
  invokers                 = { push = google_service_account.push["scheduler"].member }
  timeout_seconds          = local.consumers["scheduler"].ack_deadline_seconds
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

# The reconciler: the pipeline_events source and account (it applies a job through the same path),
# fed by Cloud Scheduler's reconcile job (reconciler.tf).
module "fn_reconciler" {
  source = "./modules/light_function"

  project_id               = var.project_id
  region                   = var.region
  name                     = "trainyard-reconciler"
  description              = "Every few minutes: re-reads runs whose events stopped and repairs them."
  source_dir               = "${local.functions_dir}/pipeline_events"
  shared_dir               = local.shared_dir
  source_bucket            = google_storage_bucket.function_source.name
  entry_point              = "on_reconcile"
  service_account_email    = google_service_account.sa["pipeline_events"].email
  build_service_account_id = local.build_sa_id
  environment_variables    = local.environment["pipeline_events"]
  invokers                 = { push = google_service_account.push["reconciler"].member }
  timeout_seconds          = local.consumers["reconciler"].ack_deadline_seconds
  max_instance_count       = 1
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

# Heavy consumers: they import TFX / the Vertex SDK, so they run the GPU image on Cloud Run.
module "run_submitter" {
  source = "./modules/run_consumer"

  project_id            = var.project_id
  region                = var.region
  name                  = "trainyard-submitter"
  image                 = local.gpu_image
  command               = var.consumer_commands["submitter"]
  service_account_email = google_service_account.sa["submitter"].email
  environment_variables = local.environment["submitter"]
  timeout               = "${local.consumers["submitter"].ack_deadline_seconds}s"
  invokers              = { push = google_service_account.push["submitter"].member }
  deletion_protection   = var.deletion_protection
  labels                = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

module "run_commands" {
  source = "./modules/run_consumer"

  project_id            = var.project_id
  region                = var.region
  name                  = "trainyard-run-commands"
  image                 = local.gpu_image
  command               = var.consumer_commands["run_commands"]
  service_account_email = google_service_account.sa["run_commands"].email
  environment_variables = local.environment["run_commands"]
  timeout               = "${local.consumers["run_commands"].ack_deadline_seconds}s"
  invokers              = { push = google_service_account.push["run_commands"].member }
  deletion_protection   = var.deletion_protection
  labels                = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}
