# Eventarc creates and owns the Pub/Sub subscription behind a Pub/Sub trigger (for Cloud Run
# services and for Cloud Functions gen2 event triggers alike), and the Eventarc API has no field for
# its dead-letter or retry policy (hashicorp/terraform-provider-google#17697: "the API doesn't
# support this"). The documented way is to update that subscription after the trigger exists, which
# this module does with gcloud, once per change of its inputs. Requires gcloud (authenticated as the
# identity running terraform) on the machine that runs `terraform apply`; see docs/deploy.md.

locals {
  trigger_short_name = element(split("/", var.trigger_name), length(split("/", var.trigger_name)) - 1)
}

resource "terraform_data" "dead_letter_policy" {
  triggers_replace = [
    var.trigger_name,
    var.dead_letter_topic_id,
    var.max_delivery_attempts,
    var.minimum_backoff,
    var.maximum_backoff,
    var.pubsub_service_agent_email,
  ]

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    environment = {
      PROJECT            = var.project_id
      REGION             = var.region
      TRIGGER            = local.trigger_short_name
      DEAD_LETTER_TOPIC  = var.dead_letter_topic_id
      MAX_ATTEMPTS       = tostring(var.max_delivery_attempts)
      MIN_BACKOFF        = var.minimum_backoff
      MAX_BACKOFF        = var.maximum_backoff
      PUBSUB_AGENT_EMAIL = var.pubsub_service_agent_email
    }
    command = <<-EOT
      set -euo pipefail
      sub=$(gcloud eventarc triggers describe "$TRIGGER" --project "$PROJECT" --location "$REGION" \
        --format='value(transport.pubsub.subscription)')
      test -n "$sub" || { echo "trigger $TRIGGER has no Pub/Sub subscription yet" >&2; exit 1; }
      gcloud pubsub subscriptions update "$sub" --project "$PROJECT" \
        --dead-letter-topic "$DEAD_LETTER_TOPIC" --max-delivery-attempts "$MAX_ATTEMPTS" \
        --min-retry-delay "$MIN_BACKOFF" --max-retry-delay "$MAX_BACKOFF"
      gcloud pubsub subscriptions add-iam-policy-binding "$sub" --project "$PROJECT" \
        --member "serviceAccount:$PUBSUB_AGENT_EMAIL" --role roles/pubsub.subscriber >/dev/null
    EOT
  }
}
