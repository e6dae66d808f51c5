# GitHub Actions authenticates with short-lived OIDC tokens exchanged through
# Workload Identity Federation: no service-account keys exist anywhere.
#
# Two identities, two trust rules:
#   latam-image-pusher  pushes images to the one Artifact Registry repository.
#                       Token subject repo:<owner>/<name>:ref:refs/heads/main: the
#                       deploy workflow's build job on main (no environment).
#   latam-deployer      deploys the two Cloud Run resources. Token subject
#                       repo:<owner>/<name>:environment:production: only a job
#                       bound to the production environment, i.e. after its
#                       protection rules (required reviewers, branch policy) passed.
# Both: the token must come from the repository with the pinned numeric id (a
# deleted and re-created repository of the same name has another id) and from
# .github/workflows/deploy.yml at refs/heads/main (job_workflow_ref), checked by
# the provider before any binding is consulted.

locals {
  deploy_workflow_ref = "${var.github_repository}/${var.deploy_workflow_path}@refs/heads/${var.deploy_branch}"
  pusher_subject      = "repo:${var.github_repository}:ref:refs/heads/${var.deploy_branch}"
  deployer_subject    = "repo:${var.github_repository}:environment:${var.deploy_environment}"
}

resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = var.pool_id
  display_name              = "GitHub Actions"
  description               = "Federates GitHub Actions OIDC tokens of ${var.github_repository} (id ${var.github_repository_id})."
}

resource "google_iam_workload_identity_pool_provider" "github" {
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-actions"
  display_name                       = "GitHub Actions OIDC"

  # google.subject is the token's sub: the bindings below name one subject each.
  attribute_mapping = {
    "google.subject"             = "assertion.sub"
    "attribute.repository_id"    = "assertion.repository_id"
    "attribute.repository"       = "assertion.repository"
    "attribute.job_workflow_ref" = "assertion.job_workflow_ref"
    "attribute.ref"              = "assertion.ref"
    "attribute.actor"            = "assertion.actor"
  }

  # Rejected at the token exchange: any other repository (by numeric id), any
  # other workflow file or branch (a workflow added on a feature branch, a
  # workflow_dispatch of deploy.yml on another ref, a pull request), and any
  # subject other than the two below.
  attribute_condition = join(" && ", [
    "assertion.repository_id == \"${var.github_repository_id}\"",
    "assertion.job_workflow_ref == \"${local.deploy_workflow_ref}\"",
    "(assertion.sub == \"${local.pusher_subject}\" || assertion.sub == \"${local.deployer_subject}\")",
  ])

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
  #checkov:skip=CKV_GCP_125:The condition pins assertion.repository_id, assertion.job_workflow_ref and assertion.sub (built from validated variables that checkov cannot render); tests/test_terraform.py asserts it instead.
}

# --- Pusher: build job, main branch, Artifact Registry only ----------------------

resource "google_service_account" "pusher" {
  project      = var.project_id
  account_id   = "latam-image-pusher"
  display_name = "latam CI image pusher (GitHub Actions)"
  description  = "Pushes images to Artifact Registry for ${var.github_repository}; nothing else."
}

resource "google_service_account_iam_member" "pusher_workload_identity_user" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/subject/${local.pusher_subject}"
}

resource "google_artifact_registry_repository_iam_member" "pusher_push" {
  project    = var.project_id
  location   = var.region
  repository = var.repository_id
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.pusher.email}"
}

# --- Deployer: deploy job, production environment --------------------------------

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "latam-deployer"
  display_name = "latam CI deployer (GitHub Actions)"
  description  = "Deploys the Cloud Run resources of ${var.github_repository} from its production environment."
}

resource "google_service_account_iam_member" "deployer_workload_identity_user" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/subject/${local.deployer_subject}"
}

# run.developer: deploy revisions, move traffic (rollback), and invoke the API
# (run.routes.invoke) for the smoke test. Cloud Run pulls the image with its own
# service agent, so the deployer needs no Artifact Registry role.
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

# The post-deploy pipeline smoke test publishes one record to the ingest topic and
# reads it back through the API. The deployer already decides what code runs as
# the subscriber, so publishing adds no reach it does not have.
resource "google_pubsub_topic_iam_member" "deployer_smoke_publish" {
  project = var.project_id
  topic   = var.ingest_topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.deployer.email}"
}
