# Webhook signing secrets of run and schedule notifications (shared/services/notify.py): one Secret
# Manager secret per name in var.notification_secrets, readable by the run-commands consumer that
# delivers notifications. A webhook names its secret (`"secret": "<name>"`); the value is added
# outside Terraform so it never lands in the state:
#   printf %s "$SIGNING_SECRET" | gcloud secrets versions add <name> --data-file=-
resource "google_secret_manager_secret" "notify" {
  for_each = var.notification_secrets

  project   = var.project_id
  secret_id = each.value
  labels    = { trainyard = "notification-signing" }

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "notify_reader" {
  for_each = var.notification_secrets # known at plan (the secrets themselves are not yet)

  project   = var.project_id
  secret_id = google_secret_manager_secret.notify[each.value].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sa["run_commands"].email}"
}
