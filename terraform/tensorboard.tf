# The Vertex AI TensorBoard instance every Trainer CustomJob uploads its event files to
# (docs/pipeline.md, "TensorBoard"). The submitter names it in each CustomJobSpec (`tensorboard`, with a
# `base_output_directory` under the run's artifacts: pipeline_compiler/pipeline.py tensorboard_upload);
# Vertex then sets AIP_TENSORBOARD_LOG_DIR in the job and uploads as the job writes, into an experiment
# named after the job, as the job's service account (the pipeline account: roles/aiplatform.user on
# the project and storage.objectUser on the artifacts bucket, iam.tf;
# https://cloud.google.com/vertex-ai/docs/experiments/tensorboard-training). Regional: in var.region,
# where the Trainer runs unless a GPU fallback moves an attempt elsewhere: that attempt names no instance (a job
# may only use resources of its own region) and the run says why (shared/domain/gpu_fallback.py tensorboard_skipped);
# one instance per fallback region would cost for every region listed, used or not.
resource "google_vertex_ai_tensorboard" "runs" {
  # checkov:skip=CKV2_GCP_26:Google-managed encryption, as the artifacts bucket the event files are written to first; CMEK for the whole deployment (buckets, Firestore, Vertex) is not offered yet, and one resource alone on a KMS key adds a dependency for no gain.
  project      = var.project_id
  region       = var.region
  display_name = "trainyard-runs"
  description  = "Trainyard training runs: one experiment per Trainer CustomJob"
  labels       = { trainyard = "runs" }

  depends_on = [google_project_service.enabled]
}
