# Firestore (native mode), the composite indexes of the API's queries, and the security rules.

locals {
  # Composite indexes: collection => list of [field_path, order or "CONTAINS"] in index order.
  firestore_indexes = {
    "training_runs-status-created_at" = {
      collection = "training_runs"
      fields     = [["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-model_type-created_at" = {
      collection = "training_runs"
      fields     = [["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-status-model_type-created_at" = {
      collection = "training_runs"
      fields     = [["status", "ASCENDING"], ["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # The API's list and the dashboard's filter bar combine dataset with status and model type.
    "training_runs-status-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["status", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-model_type-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["model_type", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-status-model_type-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["status", "ASCENDING"], ["model_type", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-schedule_id-created_at" = {
      collection = "training_runs"
      fields     = [["schedule_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # The reconciler's scan of deployments left deploying (shared/services/reconcile.py).
    "training_runs-deployment_status-created_at" = {
      collection = "training_runs"
      fields     = [["deployment_status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # The reconciler's scan of batch predictions left running (shared/services/reconcile.py).
    "training_runs-batch_prediction_status-created_at" = {
      collection = "training_runs"
      fields     = [["batch_prediction_status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # The deleted runs: GET /api/training-runs?deleted=true and the reconciler's purge (reconcile.py).
    "training_runs-deleted-created_at" = {
      collection = "training_runs"
      fields     = [["deleted", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "experiments-model_type-recall_at_100" = {
      collection = "experiments"
      fields     = [["model_type", "ASCENDING"], ["metrics.recall_at_100", "DESCENDING"]]
    }
    "experiments-model_type-test_rmse" = {
      collection = "experiments"
      fields     = [["model_type", "ASCENDING"], ["metrics.test_rmse", "ASCENDING"]]
    }
    "training_schedules-status-next_run_at" = {
      collection = "training_schedules"
      fields     = [["status", "ASCENDING"], ["next_run_at", "ASCENDING"]]
    }
    # The audit trail (GET /api/admin/audit, shared/adapters/repository.py list_audit): each filter, newest
    # first. Several filters at once are served by merging these (Firestore's index merging for equality
    # filters with one order: https://firebase.google.com/docs/firestore/query-data/index-overview).
    "audit_records-actor-at" = {
      collection = "audit_records"
      fields     = [["actor", "ASCENDING"], ["at", "DESCENDING"]]
    }
    "audit_records-team-at" = {
      collection = "audit_records"
      fields     = [["team", "ASCENDING"], ["at", "DESCENDING"]]
    }
    "audit_records-action-at" = {
      collection = "audit_records"
      fields     = [["action", "ASCENDING"], ["at", "DESCENDING"]]
    }
    "audit_records-outcome-at" = {
      collection = "audit_records"
      fields     = [["outcome", "ASCENDING"], ["at", "DESCENDING"]]
    }
    "audit_records-status-at" = {
      collection = "audit_records"
      fields     = [["status", "ASCENDING"], ["at", "DESCENDING"]]
    }
    # Lists show only the caller's teams (`team in [...]`, shared/services/access.team_filter): the run
    # list's filter combinations with team, the promotion list, and the catalog and schedule lists; also
    # the spend guard's read of a team's recent runs (shared/services/spending.quote).
    "training_runs-team-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-status-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-model_type-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-status-model_type-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["status", "ASCENDING"], ["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-status-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["status", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-model_type-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["model_type", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-status-model_type-dataset_id-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["status", "ASCENDING"], ["model_type", "ASCENDING"], ["dataset_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # GET /api/endpoints: the caller's teams' runs that reached an endpoint (shared/services/endpoint_views.py).
    "training_runs-team-deployment_status-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["deployment_status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "experiments-team-model_type-recall_at_100" = {
      collection = "experiments"
      fields     = [["team", "ASCENDING"], ["model_type", "ASCENDING"], ["metrics.recall_at_100", "DESCENDING"]]
    }
    "experiments-team-model_type-test_rmse" = {
      collection = "experiments"
      fields     = [["team", "ASCENDING"], ["model_type", "ASCENDING"], ["metrics.test_rmse", "ASCENDING"]]
    }
    "datasets-team-created_at" = {
      collection = "datasets"
      fields     = [["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "feature_configs-team-created_at" = {
      collection = "feature_configs"
      fields     = [["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "model_configs-team-created_at" = {
      collection = "model_configs"
      fields     = [["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "experiments-team-created_at" = {
      collection = "experiments"
      fields     = [["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_schedules-team-created_at" = {
      collection = "training_schedules"
      fields     = [["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # The run list's search (shared/domain/run_search.py): array-contains on the run's search tokens,
    # newest first, with and without the team filter; its other filters are checked by the API
    # (shared/services/listing.run_query). A schedule's runs, of the caller's teams.
    "training_runs-search_tokens-created_at" = {
      collection = "training_runs"
      fields     = [["search_tokens", "CONTAINS"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-search_tokens-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["search_tokens", "CONTAINS"], ["created_at", "DESCENDING"]]
    }
    "training_runs-team-schedule_id-created_at" = {
      collection = "training_runs"
      fields     = [["team", "ASCENDING"], ["schedule_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    # The schedule list by status, and the experiment and model-config lists by model type (the
    # wizard's picker), paged newest first.
    "training_schedules-status-created_at" = {
      collection = "training_schedules"
      fields     = [["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_schedules-team-status-created_at" = {
      collection = "training_schedules"
      fields     = [["team", "ASCENDING"], ["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "experiments-model_type-created_at" = {
      collection = "experiments"
      fields     = [["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "experiments-team-model_type-created_at" = {
      collection = "experiments"
      fields     = [["team", "ASCENDING"], ["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "model_configs-model_type-created_at" = {
      collection = "model_configs"
      fields     = [["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "model_configs-team-model_type-created_at" = {
      collection = "model_configs"
      fields     = [["team", "ASCENDING"], ["model_type", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    "training_runs-deleted-team-created_at" = {
      collection = "training_runs"
      fields     = [["deleted", "ASCENDING"], ["team", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
  }
}

# Audit records expire: Firestore's TTL policy deletes a record once its expire_at (the API sets it
# TRAINYARD_AUDIT_RETENTION_DAYS = var.audit_retention_days after the request) has passed, typically
# within a day of it (https://firebase.google.com/docs/firestore/ttl). The field is not queried, so it
# is kept out of the single-field indexes (a timestamp rising with every write would hotspot them).
resource "google_firestore_field" "audit_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "audit_records"
  field      = "expire_at"

  ttl_config {}
  index_config {}
}

resource "google_firestore_database" "default" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.enabled]
}

resource "google_firestore_index" "composite" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = google_firestore_database.default.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      # "CONTAINS" marks an array-contains field: it takes array_config instead of an order.
      order        = fields.value[1] == "CONTAINS" ? null : fields.value[1]
      array_config = fields.value[1] == "CONTAINS" ? "CONTAINS" : null
    }
  }
}

# access/{email} (GET /api/me writes it; the rules read it) is void once expires_at passes: the rules
# check request.time. Firestore's TTL removes the stale documents some time after that
# (Field.TtlConfig: "a timestamp value ... is the document's absolute expiration time").
resource "google_firestore_field" "access_expiry" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "access"
  field      = "expires_at"

  ttl_config {}
}

resource "google_firebaserules_ruleset" "firestore" {
  project = var.project_id

  source {
    files {
      name = "firestore.rules"
      content = templatefile("${path.module}/firestore.rules", {
        org_domain_regex = replace(lower(var.org_domain), ".", "[.]")
      })
    }
  }

  depends_on = [google_firestore_database.default]

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_firebaserules_release" "firestore" {
  project      = var.project_id
  name         = "cloud.firestore"
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore.name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore]
  }
}
