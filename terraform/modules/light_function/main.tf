# One light function (Cloud Functions gen2, Python): the zip of functions/<name>/ plus shared/, built
# by the project's own build service account, and the grants of who may invoke it. An event consumer
# is an HTTP-deployed function too: a Terraform-owned push subscription (modules/push_subscription)
# delivers its topic, and functions-framework serves it as a CloudEvent function because its entry
# point is decorated @functions_framework.cloud_event (the decorator wins over the signature type the
# platform passes).

locals {
  # zip path => file on disk; main.py and requirements.txt at the root, shared/ as a package.
  files = merge(
    { for f in fileset(var.shared_dir, var.include_pattern) : "shared/${f}" => "${var.shared_dir}/${f}" },
    { for f in fileset(var.source_dir, var.include_pattern) : f => "${var.source_dir}/${f}" },
    var.extra_files,
  )
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.terraform/trainyard-build/${var.name}.zip"

  dynamic "source" {
    for_each = local.files
    content {
      filename = source.key
      content  = file(source.value)
    }
  }
}

resource "google_storage_bucket_object" "source" {
  # The content hash in the name makes every source change a new object, so the function redeploys.
  name   = "functions/${var.name}/${data.archive_file.source.output_sha256}.zip"
  bucket = var.source_bucket
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "this" {
  # checkov:skip=CKV_GCP_124:Ingress is per function: only the HTTP API uses ALLOW_ALL (it still requires an IAM-checked ID token, invokers rejects allUsers); event functions default to ALLOW_INTERNAL_ONLY (tests/unit/test_terraform.py enforces both).
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = var.entry_point
    # Projects created since mid-2024 give the default build account too little to build a function
    # (https://cloud.google.com/functions/docs/securing/build-custom-sa): the build runs as ours.
    service_account = var.build_service_account_id

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    max_instance_count             = var.max_instance_count
    min_instance_count             = 0
    ingress_settings               = var.ingress_settings
    all_traffic_on_latest_revision = true
    service_account_email          = var.service_account_email
    environment_variables          = var.environment_variables

    # Read from Secret Manager when an instance starts (the function's identity needs secretAccessor):
    # https://cloud.google.com/functions/docs/configuring/secrets
    dynamic "secret_environment_variables" {
      for_each = var.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
}

# Gen2 functions are Cloud Run services: invoking one needs roles/run.invoker on that service. Keyed
# by static names, so the keys are known while planning even when a member is not yet.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

# A public entrance (var.public): the network lets everyone in, so the code must verify every
# caller itself. Cloud Run has two ways to make a service public
# (https://cloud.google.com/run/docs/authenticating/public): roles/run.invoker for allUsers, which
# organisations enforcing domain-restricted sharing refuse, or the invoker IAM check disabled.
resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.public && var.public_by == "allUsers" ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"

  lifecycle {
    precondition {
      condition     = lookup(var.environment_variables, "TRAINYARD_AUTH", "") == "firebase"
      error_message = "A public function must verify every caller itself: set TRAINYARD_AUTH=firebase in its environment."
    }
  }
}

# The other way (public_by = "invoker_iam_check_disabled"). It is a setting of the Cloud Run service,
# which the Cloud Functions v2 API does not expose on a function
# (hashicorp/terraform-provider-google#23360), so gcloud sets it on the function's service once the
# function exists, and again after every update of the function (its update_time changes).
resource "terraform_data" "invoker_iam_check_disabled" {
  count = var.public && var.public_by == "invoker_iam_check_disabled" ? 1 : 0

  triggers_replace = [google_cloudfunctions2_function.this.update_time]

  provisioner "local-exec" {
    command = "gcloud run services update ${google_cloudfunctions2_function.this.name} --project=${var.project_id} --region=${var.region} --no-invoker-iam-check --quiet"
  }

  lifecycle {
    precondition {
      condition     = lookup(var.environment_variables, "TRAINYARD_AUTH", "") == "firebase"
      error_message = "A public function must verify every caller itself: set TRAINYARD_AUTH=firebase in its environment."
    }
  }
}
