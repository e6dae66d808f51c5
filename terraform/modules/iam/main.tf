# One identity per workload, each granted only what its code calls.
# Roles are bound on the narrowest resource that works; only jobUser is
# project-level because BigQuery jobs are created in a project.

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = "latam-api"
  display_name = "latam API (Cloud Run service)"
  description  = "Runtime identity of the read-only records API."
}

resource "google_service_account" "subscriber" {
  project      = var.project_id
  account_id   = "latam-subscriber"
  display_name = "latam subscriber (Cloud Run worker pool)"
  description  = "Runtime identity of run_subscriber: consumes Pub/Sub, writes BigQuery."
}

# A separate, human-impersonated identity for the dead_letters tool (inspect and
# replay). Keeping replay off the always-on subscriber means a compromised
# subscriber can neither drain the dead-letter queue (destroying evidence) nor
# inject messages into the ingest topic.
resource "google_service_account" "operator" {
  project      = var.project_id
  account_id   = "latam-operator"
  display_name = "latam operator (dead-letter inspect/replay)"
  description  = "Impersonated by on-call to run manage.py dead_letters."
}

# --- API: read the table, run query jobs -----------------------------------

resource "google_bigquery_table_iam_member" "api_table_viewer" {
  project    = var.project_id
  dataset_id = var.dataset_id
  table_id   = var.table_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.api.email}"
}

resource "google_project_iam_member" "api_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.api.email}"
}

# --- Subscriber: consume, dead-letter, write --------------------------------

resource "google_pubsub_subscription_iam_member" "subscriber_consume" {
  project      = var.project_id
  subscription = var.subscription_name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.subscriber.email}"
}

# subscriptions.get: lets the subscriber verify its subscription (and its
# dead-letter policy) at start-up; pubsub.subscriber does not include it.
resource "google_pubsub_subscription_iam_member" "subscriber_describe" {
  project      = var.project_id
  subscription = var.subscription_name
  role         = "roles/pubsub.viewer"
  member       = "serviceAccount:${google_service_account.subscriber.email}"
}

# Invalid messages are published straight to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "subscriber_dead_letter_publish" {
  project = var.project_id
  topic   = var.dead_letter_topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.subscriber.email}"
}

# Dataset level (not table) so batch writes may use a temporary staging table.
resource "google_bigquery_dataset_iam_member" "subscriber_data_editor" {
  project    = var.project_id
  dataset_id = var.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.subscriber.email}"
}

# Load and query jobs (e.g. de-duplicating reads by id through the shared
# records repository) are created in the project; streaming inserts alone
# would not need it.
resource "google_project_iam_member" "subscriber_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.subscriber.email}"
}

# --- Operator: read dead letters, replay them ------------------------------

resource "google_pubsub_subscription_iam_member" "operator_dead_letter_consume" {
  project      = var.project_id
  subscription = var.dead_letter_subscription_name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.operator.email}"
}

resource "google_pubsub_subscription_iam_member" "operator_dead_letter_describe" {
  project      = var.project_id
  subscription = var.dead_letter_subscription_name
  role         = "roles/pubsub.viewer"
  member       = "serviceAccount:${google_service_account.operator.email}"
}

resource "google_pubsub_topic_iam_member" "operator_replay_publish" {
  project = var.project_id
  topic   = var.topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.operator.email}"
}

# Humans get short-lived tokens for the operator account; no keys.
resource "google_service_account_iam_member" "operator_impersonators" {
  for_each = toset(var.operator_members)

  service_account_id = google_service_account.operator.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
