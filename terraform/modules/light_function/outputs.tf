output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "HTTPS URI of the function (requires an ID token of an invoker)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "source_object" {
  description = "GCS object (content-hash named) the function was built from."
  value       = google_storage_bucket_object.source.name
}

output "trigger_name" {
  description = "Eventarc trigger of an event function (null for HTTP functions)."
  value       = local.is_event ? google_cloudfunctions2_function.this.event_trigger[0].trigger : null
}
