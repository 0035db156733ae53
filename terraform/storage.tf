# Buckets (uniform access, public access prevention, versioned with a bounded history) and the
# Artifact Registry repository of the GPU image.

resource "google_storage_bucket" "artifacts" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy bucket access logs, which would need a third bucket.
  project                     = var.project_id
  name                        = local.artifacts_bucket_name
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Artifacts (models, snapshots, metrics) are kept; only superseded versions expire.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket" "pipeline_root" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy bucket access logs, which would need a third bucket.
  project                     = var.project_id
  name                        = local.pipeline_root_bucket_name
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Intermediate pipeline outputs (examples, statistics, transform graphs) age out.
  lifecycle_rule {
    condition {
      age = var.pipeline_root_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket" "function_source" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy bucket access logs, which would need a third bucket.
  project                     = var.project_id
  name                        = local.function_source_bucket_name
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build inputs, reproducible from the repository

  versioning {
    enabled = true
  }

  # Old source zips (content-hash names) are only needed for rollbacks.
  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# What `gcloud builds submit` uploads for an image build (docs/deploy.md), read by the build account.
resource "google_storage_bucket" "build_staging" {
  # checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (data access logs), not legacy bucket access logs, which would need a third bucket.
  project                     = var.project_id
  name                        = local.build_staging_bucket_name
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build inputs, reproducible from the repository

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
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
