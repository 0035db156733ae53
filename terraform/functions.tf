# The light functions (Cloud Functions gen2, Python 3.11, source = functions/<name>/ + shared/) and
# the heavy consumers (Cloud Run from the GPU image). Every consumer is reached by a Terraform-owned
# push subscription (pubsub.tf) whose identity alone may invoke it; the HTTP API is the one function
# that is not a consumer.

locals {
  functions_dir = "${local.repo_root}/functions"
  shared_dir    = "${local.repo_root}/shared"
  build_sa_id   = google_service_account.sa["build"].id
  # A Cloud Run consumer's command: the Functions Framework serving its handler from the GPU image (on
  # Cloud Run's $PORT), unless var.consumer_commands replaces it.
  consumer_commands = { for name, c in local.consumers : name => lookup(var.consumer_commands, name, ["functions-framework", "--source=${c.source}/main.py", "--target=${c.entry_point}", "--signature-type=cloudevent"]) }
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
  source_bucket            = google_storage_bucket.bucket["function_source"].name
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

# The consumers (consumers.json, one row each; scripts/stack.py starts the local twin's from the same rows):
# light functions, and the heavy ones, which import TFX / the Vertex SDK and so run the GPU image on
# Cloud Run. Each runs as its settings role's account with that role's environment, is invoked only
# by its push identity, and may take as long as its ack deadline.
module "consumer_function" {
  source   = "./modules/light_function"
  for_each = { for name, c in local.consumers : name => c if c.runs_on == "function" }

  project_id               = var.project_id
  region                   = var.region
  name                     = each.value.name
  description              = each.value.description
  source_dir               = "${local.repo_root}/${each.value.source}"
  shared_dir               = local.shared_dir
  source_bucket            = google_storage_bucket.bucket["function_source"].name
  entry_point              = each.value.entry_point
  service_account_email    = google_service_account.sa[each.value.service_account].email
  build_service_account_id = local.build_sa_id
  environment_variables    = local.environment[each.value.service_account]
  invokers                 = { push = google_service_account.push[each.key].member }
  timeout_seconds          = each.value.ack_deadline_seconds
  max_instance_count       = try(each.value.max_instance_count, null) # null: the module's default
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

module "consumer_service" {
  source   = "./modules/run_consumer"
  for_each = { for name, c in local.consumers : name => c if c.runs_on == "cloud_run" }

  project_id            = var.project_id
  region                = var.region
  name                  = each.value.name
  image                 = local.gpu_image
  command               = local.consumer_commands[each.key]
  service_account_email = google_service_account.sa[each.value.service_account].email
  environment_variables = local.environment[each.value.service_account]
  timeout               = "${each.value.ack_deadline_seconds}s"
  invokers              = { push = google_service_account.push[each.key].member }
  deletion_protection   = var.deletion_protection
  labels                = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation]
}

# Where each consumer was before the table (an existing deployment plans no destroy/create).
# `from` is the address the state still holds, which the configuration no longer declares: that is the
# point of the block (https://developer.hashicorp.com/terraform/language/moved). Checkers that read
# `from` as a reference report these as undeclared; tools/terraform_schema/check_tf.py reads only `to`.
moved {
  from = module.fn_pipeline_events
  to   = module.consumer_function["pipeline_events"]
}

moved {
  from = module.fn_training_progress
  to   = module.consumer_function["training_progress"]
}

moved {
  from = module.fn_scheduler
  to   = module.consumer_function["scheduler"]
}

moved {
  from = module.fn_reconciler
  to   = module.consumer_function["reconciler"]
}

moved {
  from = module.run_submitter
  to   = module.consumer_service["submitter"]
}

moved {
  from = module.run_commands
  to   = module.consumer_service["run_commands"]
}
