# GitHub Actions authenticates with short-lived OIDC tokens exchanged through
# Workload Identity Federation: no service-account keys exist anywhere.

resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = var.pool_id
  display_name              = "GitHub Actions"
  description               = "Federates GitHub Actions OIDC tokens of ${var.github_repository}."
}

resource "google_iam_workload_identity_pool_provider" "github" {
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-actions"
  display_name                       = "GitHub Actions OIDC"

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
    "attribute.actor"      = "assertion.actor"
  }

  # Tokens from any other repository, or from a branch/environment not listed,
  # are rejected at the token exchange, before any IAM binding is consulted:
  # a pull request from a fork or a feature branch cannot obtain credentials.
  attribute_condition = join(" && ", [
    "assertion.repository == \"${var.github_repository}\"",
    "(${join(" || ", [for s in var.allowed_subjects : "assertion.sub == \"repo:${var.github_repository}:${s}\""])})",
  ])

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
  #checkov:skip=CKV_GCP_125:The condition pins assertion.repository and assertion.sub == "repo:<owner>/<name>:<ref|environment>" (validated, no wildcards), but it is built from variables that checkov cannot render; tests/test_terraform.py asserts it instead.
}

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "latam-deployer"
  display_name = "latam CI deployer (GitHub Actions)"
  description  = "Pushes images and deploys Cloud Run for ${var.github_repository}."
}

# Only workflows of the pinned repository can impersonate the deployer.
resource "google_service_account_iam_member" "deployer_workload_identity_user" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository/${var.github_repository}"
}

resource "google_artifact_registry_repository_iam_member" "deployer_push" {
  project    = var.project_id
  location   = var.region
  repository = var.repository_id
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_cloud_run_v2_service_iam_member" "deployer_api" {
  project  = var.project_id
  location = var.region
  name     = var.api_service_name
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_cloud_run_v2_worker_pool_iam_member" "deployer_subscriber" {
  project  = var.project_id
  location = var.region
  name     = var.subscriber_name
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.deployer.email}"
}

# Deploying a revision that runs as X requires actAs on X. Granted on the two
# runtime accounts only, never project-wide.
resource "google_service_account_iam_member" "deployer_act_as_runtime" {
  for_each = var.runtime_service_account_names

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer.email}"
}
