# Vertex AI pipeline job and task state changes -> pipeline-events (consumed by pipeline_events).
# Log names are URL-encoded in filters ("/" -> "%2F"). Only Trainyard's pipeline jobs wake the
# consumer (review B9), and all of them (review N8: the pattern once admitted only "tr-" runs, so
# scheduled and run-now runs got no live progress): the pattern is shared/contract/labels.py's
# JOB_ID_PATTERN, the ids job_id_for makes from every run-id generator (a test keeps the two equal and
# calls the generators). `=~` is the Logging query language's regular-expression match, in RE2
# syntax (https://cloud.google.com/logging/docs/view/logging-query-language#regular-expressions).

locals {
  pipeline_job_id_pattern = "^(tr-[0-9a-f]{16}|ts-[0-9a-f]{12}-[md]?[0-9]{8}-[0-9]{6})-a[0-9]+$"
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
