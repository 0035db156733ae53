# Vertex AI pipeline job and task state changes -> pipeline-events (consumed by pipeline_events).
# Log names are URL-encoded in filters ("/" -> "%2F").

resource "google_logging_project_sink" "pipeline_events" {
  project                = var.project_id
  name                   = "trainyard-pipeline-events"
  description            = "Vertex AI pipeline job/task events to the pipeline-events topic."
  destination            = "pubsub.googleapis.com/${module.topic["pipeline-events"].topic_id}"
  unique_writer_identity = true
  filter                 = <<-EOT
    resource.type="aiplatform.googleapis.com/PipelineJob" AND (
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
