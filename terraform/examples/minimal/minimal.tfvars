# Copy and edit: the only values without a default.
project_id             = "my-trainyard-project"
org_domain             = "example.com"
api_invoker_members    = ["domain:example.com"]
region                 = "europe-west4"
firestore_location     = "europe-west4"
image_tag              = "3f9c2ab" # the tag `gcloud builds submit` pushed (docs/deploy.md step 7)
google_oauth_client_id = "123456789012-example.apps.googleusercontent.com"
# google_oauth_client_secret: export TF_VAR_google_oauth_client_secret=... (kept out of files)

# Optional: who may list and replay dead letters through the API (`trainyard admin dead-letters`).
admin_emails = ["ops@example.com"]

# Who may do what (docs/security.md, "Teams and roles"): each team's members with a role (viewer,
# trainer, deployer, admin) and what it owns. Without a team only admin_emails may act.
teams = {
  recs = {
    members     = { "user:ana@example.com" = "deployer", "user:ops@example.com" = "admin" }
    model_names = ["*"]                               # registry model names (= run names) it owns; e.g. ["recs-*"]
    endpoints   = ["*"]                               # existing endpoints it may deploy to; e.g. ["recs-prod"]
    datasets    = []                                  # BigQuery datasets its runs may read, project.dataset; e.g. ["my-trainyard-project.recs"]
    buckets     = ["gs://my-trainyard-project-data/"] # where its runs' files may lie
  }
}
