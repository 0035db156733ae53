# Buckets (uniform access, public access prevention, versioned with a bounded history) and the
# Artifact Registry repository of the GPU image.

locals {
  # Every bucket Trainyard owns, each with how long its objects live: `age_days` deletes live objects
  # (null: kept), `noncurrent_days` superseded versions.
  buckets = {
    # Artifacts (models, snapshots, metrics) are kept; only superseded versions expire.
    artifacts = { name = local.artifacts_bucket_name, force_destroy = false, age_days = null, noncurrent_days = var.noncurrent_version_retention_days }
    # Intermediate pipeline outputs (examples, statistics, transform graphs) age out.
    pipeline_root = { name = local.pipeline_root_bucket_name, force_destroy = false, age_days = var.pipeline_root_retention_days, noncurrent_days = var.noncurrent_version_retention_days }
    # Only build inputs, reproducible from the repository; old source zips (content-hash names) are only
    # needed for rollbacks.
    function_source = { name = local.function_source_bucket_name, force_destroy = true, age_days = 30, noncurrent_days = 7 }
    # What `gcloud builds submit` uploads for an image build (docs/deploy.md), read by the build account.
    build_staging = { name = local.build_staging_bucket_name, force_destroy = true, age_days = 7, noncurrent_days = 1 }
  }
}

resource "google_storage_bucket" "bucket" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy bucket access logs, which would need a third bucket.
  for_each = local.buckets

  project                     = var.project_id
  name                        = each.value.name
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = each.value.force_destroy

  versioning {
    enabled = true
  }

  # The age rule first, then the noncurrent one: the order the buckets had (no change to plan).
  dynamic "lifecycle_rule" {
    for_each = each.value.age_days == null ? [] : [each.value.age_days]
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = each.value.noncurrent_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Where each bucket was before local.buckets (the state keeps its objects; see functions.tf's moved blocks).
moved {
  from = google_storage_bucket.artifacts
  to   = google_storage_bucket.bucket["artifacts"]
}

moved {
  from = google_storage_bucket.pipeline_root
  to   = google_storage_bucket.bucket["pipeline_root"]
}

moved {
  from = google_storage_bucket.function_source
  to   = google_storage_bucket.bucket["function_source"]
}

moved {
  from = google_storage_bucket.build_staging
  to   = google_storage_bucket.bucket["build_staging"]
}

# The artifacts cloudbuild.yaml pushes: written by the build account, read by the workloads.
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:Google-managed encryption for container images built from this public repository's sources; CMEK would add a KMS dependency for no confidentiality gain.
  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_registry_repository
  format        = "DOCKER"
  description   = "Trainyard images: the GPU image (pipeline tasks, submitter, run-commands) and the Dataflow worker image."
  labels        = var.labels

  depends_on = [google_project_service.enabled]
}
