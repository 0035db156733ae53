# Vertex AI pipeline job and task state changes -> pipeline-events (consumed by pipeline_events).
# Log names are URL-encoded in filters ("/" -> "%2F"). Only Trainyard's pipeline jobs wake the
# consumer (review B9): their ids are shared/domain/runs.py's job_id_for(run_id, attempt), "tr-<16 hex>-a<n>"
# (a test keeps the two equal); `=~` is the Logging query language's regular-expression match.

locals {
  pipeline_job_id_pattern = "^tr-[0-9a-f]{16}-a[0-9]+$"
}

resource "google_logging_project_sink" "pipeline_events" {
  project                = var.project_id
  name                   = "trainyard-pipeline-events"
  description            = "Vertex AI pipeline job/task events to the pipeline-events topic."
  destination            = "pubsub.googleapis.com/${module.topic["pipeline-events"].topic_id}"
  unique_writer_identity = true
  filter                 = <<-EOT
    resource.type="aiplatform.googleapis.com/PipelineJob" AND
    resource.labels.pipeline_job_id=~"${local.pipeline_job_id_pattern}" AND (
      logName="projects/${var.project_id}/logs/aiplatform.googleapis.com%2Fpipeline_job_events" OR
      logName="projects/${var.project_id}/logs/aiplatform.googleapis.com%2Fpipeline_job_task_events"
    )
  EOT
}

resource "google_pubsub_topic_iam_member" "sink_writer_publisher" {
  project = var.project_id
  topic   = module.topic["pipeline-events"].topic_name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.pipeline_events.writer_identity
}
