output "name" {
  description = "Cloud Run service name."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "URI of the service (internal ingress: only pushes from this project reach it)."
  value       = google_cloud_run_v2_service.this.uri
}
