# A heavy Pub/Sub consumer: a Cloud Run service from the GPU image, reached only through an
# Eventarc Pub/Sub trigger whose identity may invoke it, with a retry and dead-letter policy on the
# trigger's subscription.

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  location            = var.region
  name                = var.name
  labels              = var.labels
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY" # Eventarc/Pub/Sub deliveries count as internal
  deletion_protection = var.deletion_protection

  template {
    service_account                  = var.service_account_email
    timeout                          = var.timeout
    max_instance_request_concurrency = var.concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instance_count
    }

    containers {
      image   = var.image
      command = var.command
      args    = var.args

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
      }

      dynamic "env" {
        for_each = var.environment_variables
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.trigger_service_account_email}"
}

resource "google_eventarc_trigger" "this" {
  project         = var.project_id
  location        = var.region
  name            = var.name
  labels          = var.labels
  service_account = var.trigger_service_account_email

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.this.name
      region  = var.region
    }
  }

  transport {
    pubsub {
      topic = var.trigger_topic_id
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.trigger_invoker]
}

module "dead_letter" {
  source = "../eventarc_dead_letter"

  project_id                 = var.project_id
  region                     = var.region
  trigger_name               = google_eventarc_trigger.this.name
  dead_letter_topic_id       = var.dead_letter_topic_id
  max_delivery_attempts      = var.max_delivery_attempts
  minimum_backoff            = var.minimum_backoff
  maximum_backoff            = var.maximum_backoff
  pubsub_service_agent_email = var.pubsub_service_agent_email
}
