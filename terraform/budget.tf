# A Cloud Billing budget on this project (issue 23 item 5; review H4: "a Cloud Billing budget with an alert"),
# made when var.billing_account is set. It alerts, it does not stop spending: the app-side spend guard
# (per-team budgets, approvals) refuses runs before they start; this is the backstop that tells people
# when the bill itself crosses a threshold. Alerts go to the billing account's admins and users (Cloud
# Billing's default recipients), to var.budget_alert_emails (Cloud Monitoring e-mail channels, at most 5)
# and as JSON to the Pub/Sub topic trainyard-budget-alerts, several times a day
# (https://cloud.google.com/billing/docs/how-to/budgets-programmatic-notifications).
# The applying account needs billing.budgets.create on the billing account (e.g. Billing Account Costs
# Manager) and pubsub.topics.setIamPolicy on the topic (Cloud Billing grants itself publish on it);
# docs/deploy.md "Cloud Billing budget".

locals {
  budget_enabled = var.billing_account != null
}

resource "google_pubsub_topic" "budget_alerts" {
  # checkov:skip=CKV_GCP_83:Google-managed encryption is sufficient for budget notifications (amounts and thresholds, no customer data); CMEK would add a KMS dependency for no gain.
  count = local.budget_enabled ? 1 : 0

  project = var.project_id
  name    = "trainyard-budget-alerts"
  labels  = var.labels

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_notification_channel" "budget_email" {
  for_each = local.budget_enabled ? toset(var.budget_alert_emails) : toset([])

  project      = var.project_id
  display_name = "Trainyard budget: ${each.value}"
  type         = "email"
  labels       = { email_address = each.value }
  user_labels  = var.labels

  depends_on = [google_project_service.enabled]
}

resource "google_billing_budget" "project" {
  count = local.budget_enabled ? 1 : 0

  billing_account = var.billing_account
  display_name    = "Trainyard ${var.project_id}"

  budget_filter {
    projects        = ["projects/${local.project_number}"]
    calendar_period = "MONTH"
  }

  amount {
    specified_amount {
      # No currency_code: the billing account's own currency (the API refuses any other).
      units = tostring(var.monthly_budget)
    }
  }

  dynamic "threshold_rules" {
    for_each = var.budget_thresholds
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }

  # One more alert when the month's forecast reaches the whole budget: before, not after, it is spent.
  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = [for channel in google_monitoring_notification_channel.budget_email : channel.id]
    pubsub_topic                     = google_pubsub_topic.budget_alerts[0].id
    schema_version                   = "1.0"
  }

  lifecycle {
    precondition {
      condition     = var.monthly_budget != null
      error_message = "billing_account is set: set monthly_budget too (the month's budget in the billing account's currency)."
    }
  }

  depends_on = [google_project_service.enabled]
}
