output "api_url" {
  description = "HTTPS URL of the API function."
  value       = module.trainyard.api_url
}

output "dashboard_url" {
  description = "The Training dashboard (sign in with a Google account of org_domain)."
  value       = module.trainyard.dashboard_url
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = module.trainyard.topics
}

output "artifacts_bucket" {
  description = "Bucket of run artifacts."
  value       = module.trainyard.artifacts_bucket
}

output "pipeline_root_bucket" {
  description = "Vertex AI pipeline root bucket."
  value       = module.trainyard.pipeline_root_bucket
}

output "service_accounts" {
  description = "Service account e-mails of the workloads."
  value       = module.trainyard.service_accounts
}

output "image_build_command" {
  description = "The command that builds and pushes the images (docs/deploy.md step 2)."
  value       = module.trainyard.image_build_command
}
