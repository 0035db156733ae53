# Sign-in for the Training dashboard (docs/dashboard.md): Firebase on the project, the page's web app
# (its API key, app id and auth domain reach the page through the API's environment, see
# local.environment in main.tf), Identity Platform with Google as the provider, and the page's hosts
# as the domains sign-in may return to. The page sends the Firebase ID token it gets; the API
# verifies it (shared/http/firebase_identity.py) and Firestore's rules read it (firestore.rules).

locals {
  # Every host the public web entrance answers at (main.tf local.web_url, the one dashboard_url names;
  # its cloudfunctions.net host; and the hashed run.app host, known after apply: nothing fn_web needs
  # depends on this config, so no cycle), Firebase's own hosts (the auth handler lives on
  # <project>.firebaseapp.com), and any the operator adds (a custom domain, localhost). A browser on
  # a host not listed gets auth/unauthorized-domain at sign-in (review N5).
  dashboard_hosts = [
    trimprefix(local.web_url, "https://"),
    "${var.region}-${var.project_id}.cloudfunctions.net",
    trimprefix(module.fn_web.uri, "https://"),
  ]
  dashboard_authorized_domains = distinct(concat(
    ["${var.project_id}.firebaseapp.com", "${var.project_id}.web.app"],
    local.dashboard_hosts, var.dashboard_authorized_domains,
  ))

  # The built page (scripts/setup_dashboard.sh → dashboard/dist), packaged beside shared/ as
  # dashboard_dist/, where shared/http/dashboard_routes.py looks for it.
  dashboard_dist = "${local.repo_root}/dashboard/dist"
  dashboard_files = {
    for f in fileset(local.dashboard_dist, "**/*.{html,js,css}") : "dashboard_dist/${f}" => "${local.dashboard_dist}/${f}"
  }
}

# A plan without the built page would deploy an entrance answering 503: refuse it up front.
resource "terraform_data" "dashboard_built" {
  input = keys(local.dashboard_files)

  lifecycle {
    precondition {
      condition     = contains(keys(local.dashboard_files), "dashboard_dist/index.html")
      error_message = "dashboard/dist is not built: run scripts/setup_dashboard.sh (make setup) before terraform plan/apply."
    }
  }
}

resource "google_firebase_project" "this" {
  provider = google-beta

  project = var.project_id

  depends_on = [google_project_service.enabled]
}

resource "google_firebase_web_app" "dashboard" {
  provider = google-beta

  project         = var.project_id
  display_name    = "Trainyard Training dashboard"
  deletion_policy = "DELETE"

  depends_on = [google_firebase_project.this]
}

# The page's public web configuration (the API key identifies the project to Firebase; it is not a
# secret: https://firebase.google.com/docs/projects/api-keys).
data "google_firebase_web_app_config" "dashboard" {
  provider = google-beta

  project    = var.project_id
  web_app_id = google_firebase_web_app.dashboard.app_id
}

resource "google_identity_platform_config" "this" {
  project            = var.project_id
  authorized_domains = local.dashboard_authorized_domains

  depends_on = [google_firebase_project.this, google_project_service.enabled]
}

# Google as the sign-in provider. Its OAuth client cannot be created through an API: make a "Web
# application" client in the console (APIs & Services → Credentials) with the authorized redirect
# URI https://<project>.firebaseapp.com/__/auth/handler, and pass its id and secret.
resource "google_identity_platform_default_supported_idp_config" "google" {
  project       = var.project_id
  idp_id        = "google.com"
  client_id     = var.google_oauth_client_id
  client_secret = var.google_oauth_client_secret
  enabled       = true

  depends_on = [google_identity_platform_config.this]
}

# The public web entrance: the page and the API for signed-in browsers, from the API's own code.
# A browser cannot present a Google ID token that Cloud Run IAM would take, so this function admits
# everyone at the network level and the code refuses every /api call without a Firebase ID token it
# verified in full (TRAINYARD_AUTH=firebase: signature, project, issuer, expiry, the organisation's
# verified address), as https://cloud.google.com/run/docs/authenticating/end-users describes. The page
# and its API share this origin: no CORS. The CLI keeps using fn_api.
module "fn_web" {
  source = "./modules/light_function"

  project_id               = var.project_id
  region                   = var.region
  name                     = local.web_name
  description              = "Trainyard Training dashboard and its API for signed-in browsers (Firebase ID tokens)."
  source_dir               = "${local.functions_dir}/api"
  shared_dir               = local.shared_dir
  extra_files              = local.dashboard_files
  source_bucket            = google_storage_bucket.bucket["function_source"].name
  entry_point              = "handle"
  service_account_email    = google_service_account.sa["api"].email
  build_service_account_id = local.build_sa_id
  environment_variables    = merge(local.environment["api"], { TRAINYARD_AUTH = "firebase" })
  secret_env               = local.api_secrets
  ingress_settings         = "ALLOW_ALL"
  public                   = true
  public_by                = var.domain_restricted_sharing ? "invoker_iam_check_disabled" : "allUsers"
  timeout_seconds          = 60
  max_instance_count       = 20
  labels                   = var.labels

  depends_on = [google_project_service.enabled, time_sleep.iam_propagation, terraform_data.dashboard_built,
  terraform_data.cursor_key_version, google_secret_manager_secret_iam_member.cursor_key_reader]
}
