output "api_url" {
  description = "HTTPS URL of the API for the CLI and scripts (an accepted token audience: mint service-account tokens with --audiences=<this>; call with Authorization: Bearer <ID token>)."
  value       = local.api_url
}

output "dashboard_url" {
  description = "The Training dashboard: open it in a browser and sign in with a Google account of org_domain (its host is an authorised sign-in domain; notifications link here)."
  value       = local.dashboard_url
}

output "topics" {
  description = "Pub/Sub topic names by shared/contract/topics.py name."
  value       = { for name, t in module.topic : name => t.topic_name }
}

output "dead_letter_topics" {
  description = "Dead-letter topic of each topic."
  value       = { for name, t in module.topic : name => t.dead_letter_topic_name }
}

output "dead_letter_subscriptions" {
  description = "Subscriptions holding dead-lettered messages, by topic."
  value       = { for name, t in module.topic : name => t.dead_letter_subscription_name }
}

output "artifacts_bucket" {
  description = "Bucket of run artifacts (TRAINYARD_ARTIFACTS_ROOT is gs://<bucket>/training)."
  value       = google_storage_bucket.bucket["artifacts"].name
}

output "pipeline_root_bucket" {
  description = "Bucket used as the Vertex AI pipeline root."
  value       = google_storage_bucket.bucket["pipeline_root"].name
}

output "function_source_bucket" {
  description = "Bucket of the zipped function sources."
  value       = google_storage_bucket.bucket["function_source"].name
}

output "service_accounts" {
  description = "E-mail of each workload's service account (api, submitter, pipeline_events, scheduler, run_commands, pipeline)."
  value       = { for k, sa in google_service_account.sa : k => sa.email }
}

output "push_service_accounts" {
  description = "E-mail of each push subscription's identity."
  value       = { for k, sa in google_service_account.push : k => sa.email }
}

output "push_subscriptions" {
  description = "Each consumer's push subscription."
  value       = { for k, p in module.push : k => p.name }
}

output "gpu_image" {
  description = "Image the pipeline tasks and the Cloud Run consumers run (build and push it first, see docs/deploy.md)."
  value       = local.gpu_image
}

output "dataflow_image" {
  description = "SDK container of the Dataflow workers."
  value       = local.dataflow_image
}

output "artifact_registry_repository" {
  description = "Docker repository URL of the images."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "build_service_account" {
  description = "Account Cloud Build runs as (pass it to `gcloud builds submit --service-account`)."
  value       = google_service_account.sa["build"].id
}

output "build_staging_bucket" {
  description = "Bucket for `gcloud builds submit --gcs-source-staging-dir`."
  value       = google_storage_bucket.bucket["build_staging"].name
}

output "dataflow_subnetwork" {
  description = "Subnetwork of the Dataflow workers."
  value       = local.dataflow_subnetwork
}

output "cloud_run_services" {
  description = "Cloud Run consumer services."
  value       = { for name, m in module.consumer_service : name => m.name }
}

output "functions" {
  description = "Cloud Functions gen2 names."
  value       = merge({ api = module.fn_api.name }, { for name, m in module.consumer_function : name => m.name })
}

output "image_build_command" {
  description = "Ready-to-paste command that builds and pushes the images (docs/deploy.md step 2), in build_region, pushing to the repository in region."
  value = join(" ", [
    "gcloud builds submit --project ${var.project_id} --region ${var.build_region} --config cloudbuild.yaml",
    "--service-account ${google_service_account.sa["build"].id}",
    "--gcs-source-staging-dir gs://${google_storage_bucket.bucket["build_staging"].name}/source",
    "--substitutions=_PROJECT_ID=${var.project_id},_REGION=${var.region},_REPOSITORY=${var.artifact_registry_repository},_GPU_IMAGE=${var.gpu_image_name},_DATAFLOW_IMAGE=${var.dataflow_image_name},_SERVING_IMAGE=${var.serving_image_name},_TAG=$(git rev-parse --short HEAD) .",
  ])
}

output "budget_alert_topic" {
  description = "The Pub/Sub topic Cloud Billing publishes budget alerts to (JSON, schema 1.0), or null without billing_account."
  value       = local.budget_enabled ? google_pubsub_topic.budget_alerts[0].id : null
}

output "vertex_tensorboard" {
  description = "The Vertex AI TensorBoard instance the Trainer's CustomJobs upload their event files to (one experiment per job)."
  value       = google_vertex_ai_tensorboard.runs.name
}
