# One light function (Cloud Functions gen2, Python): the zip of functions/<name>/ plus shared/, an
# optional Pub/Sub trigger with a retry policy and a dead-letter policy, and the invoker grants.

locals {
  is_event = var.trigger_topic_id != null

  # zip path => file on disk; main.py and requirements.txt at the root, shared/ as a package.
  files = merge(
    { for f in fileset(var.shared_dir, var.include_pattern) : "shared/${f}" => "${var.shared_dir}/${f}" },
    { for f in fileset(var.source_dir, var.include_pattern) : f => "${var.source_dir}/${f}" },
  )

  invoker_members = local.is_event ? concat(var.invoker_members, ["serviceAccount:${var.trigger_service_account_email}"]) : var.invoker_members
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
  # checkov:skip=CKV_GCP_124:Ingress is per function: only the HTTP API uses ALLOW_ALL (it still requires an IAM-checked ID token, invoker_members rejects allUsers); event functions default to ALLOW_INTERNAL_ONLY (tests/unit/test_terraform.py enforces both).
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime     = var.runtime
    entry_point = var.entry_point

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
  }

  dynamic "event_trigger" {
    for_each = local.is_event ? [1] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = var.trigger_topic_id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = var.trigger_service_account_email
    }
  }

  lifecycle {
    precondition {
      condition     = !local.is_event || (var.trigger_service_account_email != null && var.dead_letter_topic_id != null && var.pubsub_service_agent_email != null)
      error_message = "An event function needs trigger_service_account_email, dead_letter_topic_id and pubsub_service_agent_email."
    }
  }
}

# Gen2 functions are Cloud Run services: invoking one needs roles/run.invoker on that service.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(local.invoker_members)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

module "dead_letter" {
  source = "../eventarc_dead_letter"
  count  = local.is_event ? 1 : 0

  project_id                 = var.project_id
  region                     = var.region
  trigger_name               = google_cloudfunctions2_function.this.event_trigger[0].trigger
  dead_letter_topic_id       = var.dead_letter_topic_id
  max_delivery_attempts      = var.max_delivery_attempts
  minimum_backoff            = var.minimum_backoff
  maximum_backoff            = var.maximum_backoff
  pubsub_service_agent_email = var.pubsub_service_agent_email
}
