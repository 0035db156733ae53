# Notifications (shared/services/actions/notify.py, docs/notifications.md, docs/security.md "Notifications").
#
# Webhook signing secrets: one Secret Manager secret per name in var.notification_secrets, readable by the
# run-commands consumer that delivers notifications, and bound to the URL prefixes it may sign for
# (TRAINYARD_NOTIFY_SIGNING_SECRETS, main.tf). A webhook names its secret (`"secret": "<name>"`); the value
# is added outside Terraform so it never lands in the state:
#   printf %s "$SIGNING_SECRET" | gcloud secrets versions add <name> --data-file=-
resource "google_secret_manager_secret" "notify" {
  for_each = var.notification_secrets

  project   = var.project_id
  secret_id = each.key
  labels    = { trainyard = "notification-signing" }

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "notify_reader" {
  for_each = var.notification_secrets # known at plan (the secrets themselves are not yet)

  project   = var.project_id
  secret_id = google_secret_manager_secret.notify[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sa["run_commands"].email}"
}

# Webhook URLs (their path is often the credential): the API stores each target's URL as a secret named
# trainyard-webhook-<run or schedule id>-<n> (shared/services/notification_targets.py) and the run-commands
# consumer reads it when it sends. Secrets are made at run time, so the grants are on the project, held to
# that name prefix by an IAM condition (Secret Manager supports resource.name in conditions:
# https://cloud.google.com/iam/docs/conditions-resource-attributes); creating one checks
# secretmanager.secrets.create on the project (https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create),
# which no name condition can narrow, and gives no access to any secret's value.
locals {
  webhook_url_secrets = "projects/${local.project_number}/secrets/trainyard-webhook-"
}

resource "google_project_iam_custom_role" "webhook_secret_creator" {
  project     = var.project_id
  role_id     = "trainyardWebhookSecretCreator"
  title       = "Trainyard webhook secret creator"
  description = "Create Secret Manager secrets (the API's webhook URLs; granted to the API only)."
  permissions = ["secretmanager.secrets.create"]
}

resource "google_project_iam_custom_role" "webhook_url_writer" {
  project     = var.project_id
  role_id     = "trainyardWebhookUrlWriter"
  title       = "Trainyard webhook URL writer"
  description = "Add a version to a webhook URL secret, and see whether it has one (never read it)."
  permissions = ["secretmanager.versions.add", "secretmanager.versions.get"]
}

resource "google_project_iam_member" "webhook_secret_creator" {
  project = var.project_id
  role    = google_project_iam_custom_role.webhook_secret_creator.name
  member  = google_service_account.sa["api"].member
}

resource "google_project_iam_member" "webhook_url_writer" {
  project = var.project_id
  role    = google_project_iam_custom_role.webhook_url_writer.name
  member  = google_service_account.sa["api"].member

  condition {
    title       = "trainyard-webhook-secrets"
    description = "Only the secrets that hold webhook URLs."
    expression  = "resource.name.startsWith(\"${local.webhook_url_secrets}\")"
  }
}

resource "google_project_iam_member" "webhook_url_reader" {
  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.sa["run_commands"].member

  condition {
    title       = "trainyard-webhook-secrets"
    description = "Only the secrets that hold webhook URLs."
    expression  = "resource.name.startsWith(\"${local.webhook_url_secrets}\")"
  }
}
