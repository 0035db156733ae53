# Training when new data lands (docs/schedules.md "On new data"): what publishes to `data-landed`, whose
# consumer (consumers.json data_triggers) starts the runs of the schedules whose data_trigger matches.
#
# - Cloud Storage: one bucket notification per listed bucket and prefix, new objects only (OBJECT_FINALIZE),
#   payload JSON_API_V1 (the object resource; attributes eventType, bucketId, objectId, objectGeneration:
#   https://cloud.google.com/storage/docs/pubsub-notifications). The bucket's project's Cloud Storage
#   service agent publishes them, so it is granted roles/pubsub.publisher on the topic
#   (https://cloud.google.com/storage/docs/reporting-changes#before-you-begin). A bucket takes at most 10
#   notification configurations for one event type.
# - BigQuery: a log sink on the data_access audit entries in BigQueryAuditMetadata format whose
#   protoPayload.metadata.tableDataChange names a listed table in protoPayload.resourceName
#   ("projects/P/datasets/D/tables/T"): a load, query or DML job, or a Write API append, that wrote rows
#   (https://cloud.google.com/bigquery/docs/reference/auditlogs). BigQuery writes its data_access audit logs
#   without enabling them. `:*` is the Logging query language's "field is present"
#   (https://cloud.google.com/logging/docs/view/logging-query-language).
# A schedule watching a bucket or table not listed here is accepted by the API but never fires.

variable "data_trigger_buckets" {
  type = list(object({
    bucket = string
    prefix = optional(string, "")
  }))
  description = "Buckets (and object-name prefixes) whose new objects may start a schedule's run: one Cloud Storage notification to the data-landed topic each. [{ bucket = \"acme-landing\", prefix = \"interactions/\" }]"
  default     = []

  validation {
    condition     = alltrue([for b in var.data_trigger_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", b.bucket))])
    error_message = "Each bucket is a bucket name (no gs:// prefix)."
  }
}

variable "data_trigger_tables" {
  type = list(object({
    project = optional(string)
    dataset = string
    table   = string
  }))
  description = "BigQuery tables whose writes may start a schedule's run (the project defaults to project_id; its audit entries must be logged in project_id, where the sink is). [{ dataset = \"events\", table = \"interactions\" }]"
  default     = []
}

locals {
  data_landed_topic = module.topic["data-landed"]
  data_notifications = {
    for b in var.data_trigger_buckets : "${b.bucket}/${b.prefix}" => b
  }
  data_trigger_tables = [
    for t in var.data_trigger_tables : "projects/${coalesce(t.project, var.project_id)}/datasets/${t.dataset}/tables/${t.table}"
  ]
  data_trigger_table_clause = join(" OR ", [for t in local.data_trigger_tables : "protoPayload.resourceName=\"${t}\""])
  bigquery_data_filter      = <<-EOT
    logName="projects/${var.project_id}/logs/cloudaudit.googleapis.com%2Fdata_access" AND
    resource.type="bigquery_dataset" AND
    protoPayload.metadata."@type"="type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata" AND
    protoPayload.metadata.tableDataChange:* AND (${local.data_trigger_table_clause})
  EOT
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_pubsub_topic_iam_member" "gcs_agent_publishes_data_landed" {
  count   = length(var.data_trigger_buckets) > 0 ? 1 : 0
  project = var.project_id
  topic   = local.data_landed_topic.topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "data_landed" {
  for_each = local.data_notifications

  bucket             = each.value.bucket
  topic              = local.data_landed_topic.topic_id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = each.value.prefix == "" ? null : each.value.prefix

  # The service agent must be able to publish when the notification is created (GCS checks it then).
  depends_on = [google_pubsub_topic_iam_member.gcs_agent_publishes_data_landed]
}

resource "google_logging_project_sink" "bigquery_data_landed" {
  count                  = length(var.data_trigger_tables) > 0 ? 1 : 0
  project                = var.project_id
  name                   = "trainyard-data-landed"
  description            = "BigQuery writes to the data-triggered tables -> data-landed."
  destination            = "pubsub.googleapis.com/${local.data_landed_topic.topic_id}"
  unique_writer_identity = true
  filter                 = local.bigquery_data_filter
}

resource "google_pubsub_topic_iam_member" "data_sink_writer_publisher" {
  count   = length(var.data_trigger_tables) > 0 ? 1 : 0
  project = var.project_id
  topic   = local.data_landed_topic.topic_name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.bigquery_data_landed[0].writer_identity
}
