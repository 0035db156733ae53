output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "HTTPS URI of the function's Cloud Run service (requires an ID token of an invoker)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "source_object" {
  description = "GCS object (content-hash named) the function was built from."
  value       = google_storage_bucket_object.source.name
}
