# Minimal deployment of Trainyard: one project, defaults everywhere else.
#   terraform init && terraform apply -var-file=minimal.tfvars

# Firebase and Identity Platform refuse calls under user credentials (ADC) without a quota project
# ("should usually be used with a provider configuration with user_project_override = true",
# provider docs of google_firebase_project; hashicorp/terraform-provider-google#18668): bill every
# call to the project itself.
provider "google" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

module "trainyard" {
  source = "../.."

  project_id          = var.project_id
  region              = var.region
  firestore_location  = var.firestore_location
  org_domain          = var.org_domain
  api_invoker_members = var.api_invoker_members
  admin_emails        = var.admin_emails
  teams               = var.teams
  image_tag           = var.image_tag
  deletion_protection = var.deletion_protection
  build_region        = var.build_region

  data_buckets           = var.data_buckets
  data_bigquery_datasets = var.data_bigquery_datasets

  google_oauth_client_id     = var.google_oauth_client_id
  google_oauth_client_secret = var.google_oauth_client_secret
}
