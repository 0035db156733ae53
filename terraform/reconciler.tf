# The reconciler's clock: Cloud Scheduler publishes to `reconcile` every few minutes, and the
# reconciler function (consumers.json, deployed by functions.tf, fed by its push subscription in pubsub.tf) re-reads
# the runs whose events stopped (shared/services/reconcile.py). Locally, scripts/ticker.py publishes.

resource "google_cloud_scheduler_job" "reconcile" {
  project     = var.project_id
  region      = var.region
  name        = "trainyard-reconcile"
  description = "Trainyard: re-read runs whose events stopped (submitting, running, cancelling, deploying, pushing)."
  schedule    = var.reconcile_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = module.topic["reconcile"].topic_id
    data       = base64encode("{}")
  }

  depends_on = [google_project_service.enabled, google_pubsub_topic_iam_member.scheduler_agent_publisher["reconcile"]]
}
