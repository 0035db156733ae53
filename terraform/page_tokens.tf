# The key the API signs its opaque page tokens with (TRAINYARD_CURSOR_KEY, shared/page_tokens.py;
# security review H2). Secret Manager holds it; only the API's identity reads it; it reaches fn_api and
# fn_web as a secret environment variable (modules/light_function secret_env).
resource "google_secret_manager_secret" "cursor_key" {
  project   = var.project_id
  secret_id = "trainyard-cursor-key"
  labels    = merge(var.labels, { trainyard = "page-token-key" })

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "cursor_key_reader" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.cursor_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.sa["api"].member
}

# Its first version, drawn on the deployer's machine and added with gcloud, so the value never enters
# Terraform's state (no random provider either); an existing version is kept. Rotate with
# `gcloud secrets versions add trainyard-cursor-key`: new instances sign with it, and tokens issued
# before stop working (clients start again from the first page).
resource "terraform_data" "cursor_key_version" {
  triggers_replace = [google_secret_manager_secret.cursor_key.id]

  provisioner "local-exec" {
    command = "gcloud secrets versions list ${google_secret_manager_secret.cursor_key.secret_id} --project=${var.project_id} --filter=state=ENABLED --limit=1 --format='value(name)' | grep -q . || head -c 48 /dev/urandom | base64 | tr -d '\\n' | gcloud secrets versions add ${google_secret_manager_secret.cursor_key.secret_id} --project=${var.project_id} --data-file=-"
  }
}

locals {
  # The API's secrets as environment variables (fn_api, fn_web): name => Secret Manager secret id.
  api_secrets = { TRAINYARD_CURSOR_KEY = google_secret_manager_secret.cursor_key.secret_id }
}
