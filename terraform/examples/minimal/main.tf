# Minimal deployment of Trainyard: one project, defaults everywhere else.
#   terraform init && terraform apply -var-file=minimal.tfvars

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "trainyard" {
  source = "../.."

  project_id          = var.project_id
  region              = var.region
  firestore_location  = var.firestore_location
  org_domain          = var.org_domain
  api_invoker_members = var.api_invoker_members
  admin_emails        = var.admin_emails
  image_tag           = var.image_tag
  deletion_protection = var.deletion_protection

  google_oauth_client_id     = var.google_oauth_client_id
  google_oauth_client_secret = var.google_oauth_client_secret
}
