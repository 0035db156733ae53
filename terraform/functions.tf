# The light functions (Cloud Functions gen2, Python 3.11, source = functions/<name>/ + shared/)
# and the heavy consumers (Cloud Run from the GPU image). Every Pub/Sub consumer is reached through
# an Eventarc trigger with a retry policy and a dead-letter policy on the trigger's subscription.

locals {
  functions_dir = "${local.repo_root}/functions"
  shared_dir    = "${local.repo_root}/shared"

  event_function_defaults = {
    max_delivery_attempts      = var.max_delivery_attempts
    minimum_backoff            = var.retry_minimum_backoff
    maximum_backoff            = var.retry_maximum_backoff
    pubsub_service_agent_email = google_project_service_identity.pubsub.email
  }
}

# HTTP API (/api/...). Requires authentication: the caller sends a Google-signed ID token, the
# Google front end in front of Cloud Run verifies it and checks roles/run.invoker before a request
# reaches the code (no IAP: it would need a load balancer). The code reads the already-verified
# caller e-mail from the token and checks the organisation domain (TRAINYARD_ALLOWED_DOMAIN).
module "fn_api" {
  source = "./modules/light_function"

  project_id            = var.project_id
  region                = var.region
  name                  = "trainyard-api"
  description           = "Trainyard HTTP API (/api/...)."
  source_dir            = "${local.functions_dir}/api"
  shared_dir            = local.shared_dir
  source_bucket         = google_storage_bucket.function_source.name
  entry_point           = "handle"
  service_account_email = google_service_account.sa["api"].email
  environment_variables = local.common_env
  ingress_settings      = "ALLOW_ALL"
  invoker_members       = var.api_invoker_members
  timeout_seconds       = 60
  max_instance_count    = 20
  labels                = var.labels

  depends_on = [google_project_service.enabled]
}

module "fn_pipeline_events" {
  source = "./modules/light_function"

  project_id                    = var.project_id
  region                        = var.region
  name                          = "trainyard-pipeline-events"
  description                   = "Vertex pipeline job/task events -> run status and stages."
  source_dir                    = "${local.functions_dir}/pipeline_events"
  shared_dir                    = local.shared_dir
  source_bucket                 = google_storage_bucket.function_source.name
  entry_point                   = "on_pipeline_event"
  service_account_email         = google_service_account.sa["pipeline_events"].email
  environment_variables         = local.common_env
  trigger_topic_id              = module.topic["pipeline-events"].topic_id
  dead_letter_topic_id          = module.topic["pipeline-events"].dead_letter_topic_id
  trigger_service_account_email = google_service_account.trigger["pipeline_events"].email
  max_delivery_attempts         = local.event_function_defaults.max_delivery_attempts
  minimum_backoff               = local.event_function_defaults.minimum_backoff
  maximum_backoff               = local.event_function_defaults.maximum_backoff
  pubsub_service_agent_email    = local.event_function_defaults.pubsub_service_agent_email
  labels                        = var.labels

  depends_on = [google_project_service.enabled]
}

module "fn_training_progress" {
  source = "./modules/light_function"

  project_id                    = var.project_id
  region                        = var.region
  name                          = "trainyard-training-progress"
  description                   = "Per-epoch training metrics -> run progress."
  source_dir                    = "${local.functions_dir}/pipeline_events"
  shared_dir                    = local.shared_dir
  source_bucket                 = google_storage_bucket.function_source.name
  entry_point                   = "on_training_progress"
  service_account_email         = google_service_account.sa["pipeline_events"].email
  environment_variables         = local.common_env
  trigger_topic_id              = module.topic["training-progress"].topic_id
  dead_letter_topic_id          = module.topic["training-progress"].dead_letter_topic_id
  trigger_service_account_email = google_service_account.trigger["training_progress"].email
  max_delivery_attempts         = local.event_function_defaults.max_delivery_attempts
  minimum_backoff               = local.event_function_defaults.minimum_backoff
  maximum_backoff               = local.event_function_defaults.maximum_backoff
  pubsub_service_agent_email    = local.event_function_defaults.pubsub_service_agent_email
  labels                        = var.labels

  depends_on = [google_project_service.enabled]
}

module "fn_scheduler" {
  source = "./modules/light_function"

  project_id                    = var.project_id
  region                        = var.region
  name                          = "trainyard-scheduler"
  description                   = "Schedule slot -> training run (idempotent) -> run-submit."
  source_dir                    = "${local.functions_dir}/scheduler"
  shared_dir                    = local.shared_dir
  source_bucket                 = google_storage_bucket.function_source.name
  entry_point                   = "on_schedule_trigger"
  service_account_email         = google_service_account.sa["scheduler"].email
  environment_variables         = local.common_env
  trigger_topic_id              = module.topic["schedule-trigger"].topic_id
  dead_letter_topic_id          = module.topic["schedule-trigger"].dead_letter_topic_id
  trigger_service_account_email = google_service_account.trigger["scheduler"].email
  max_delivery_attempts         = local.event_function_defaults.max_delivery_attempts
  minimum_backoff               = local.event_function_defaults.minimum_backoff
  maximum_backoff               = local.event_function_defaults.maximum_backoff
  pubsub_service_agent_email    = local.event_function_defaults.pubsub_service_agent_email
  labels                        = var.labels

  depends_on = [google_project_service.enabled]
}

# Heavy consumers: they import TFX / the Vertex SDK, so they run the GPU image on Cloud Run.
module "run_submitter" {
  source = "./modules/run_consumer"

  project_id                    = var.project_id
  region                        = var.region
  name                          = "trainyard-submitter"
  image                         = local.gpu_image
  command                       = var.consumer_commands["submitter"]
  service_account_email         = google_service_account.sa["submitter"].email
  environment_variables         = local.common_env
  trigger_topic_id              = module.topic["run-submit"].topic_id
  dead_letter_topic_id          = module.topic["run-submit"].dead_letter_topic_id
  trigger_service_account_email = google_service_account.trigger["submitter"].email
  max_delivery_attempts         = var.max_delivery_attempts
  minimum_backoff               = var.retry_minimum_backoff
  maximum_backoff               = var.retry_maximum_backoff
  pubsub_service_agent_email    = google_project_service_identity.pubsub.email
  deletion_protection           = var.deletion_protection
  labels                        = var.labels

  depends_on = [google_project_service.enabled, google_artifact_registry_repository_iam_member.readers]
}

module "run_commands" {
  source = "./modules/run_consumer"

  project_id                    = var.project_id
  region                        = var.region
  name                          = "trainyard-run-commands"
  image                         = local.gpu_image
  command                       = var.consumer_commands["run_commands"]
  service_account_email         = google_service_account.sa["run_commands"].email
  environment_variables         = local.common_env
  trigger_topic_id              = module.topic["run-commands"].topic_id
  dead_letter_topic_id          = module.topic["run-commands"].dead_letter_topic_id
  trigger_service_account_email = google_service_account.trigger["run_commands"].email
  max_delivery_attempts         = var.max_delivery_attempts
  minimum_backoff               = var.retry_minimum_backoff
  maximum_backoff               = var.retry_maximum_backoff
  pubsub_service_agent_email    = google_project_service_identity.pubsub.email
  deletion_protection           = var.deletion_protection
  labels                        = var.labels

  depends_on = [google_project_service.enabled]
}
