output "name" {
  description = "Cloud Run service name."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "Internal-only URI of the service."
  value       = google_cloud_run_v2_service.this.uri
}

output "trigger_name" {
  description = "Eventarc trigger delivering the topic's messages."
  value       = google_eventarc_trigger.this.name
}
