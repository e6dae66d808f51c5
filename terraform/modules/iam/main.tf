# One identity per workload, each granted only what its code calls.
# Roles are bound on the narrowest resource that works; only the API's jobUser is
# project-level because BigQuery query jobs are created in a project.

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
# What its code calls (ingestion/subscriber.py, records/repository.py): streaming
# pull, ack and modifyAckDeadline on the ingest subscription; publish to the
# dead-letter topic; row writes to the records table (the Storage Write API's
# default stream, AppendRows, authorized by bigquery.tables.updateData on the
# table). No get_table, no queries, no jobs, no subscriptions.get: nothing else is
# granted.

resource "google_pubsub_subscription_iam_member" "subscriber_consume" {
  project      = var.project_id
  subscription = var.subscription_name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.subscriber.email}"
}

# Invalid messages are published straight to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "subscriber_dead_letter_publish" {
  project = var.project_id
  topic   = var.dead_letter_topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.subscriber.email}"
}

# Append rows to the records table and nothing else. bigquery.dataEditor (even on
# the table) would also let a compromised subscriber read every record, change the
# schema or delete the table; this role carries the one permission a row write
# needs. Add bigquery.tables.get here only if the writer starts reading the
# table's metadata (get_table, or a Storage Write client that fetches the schema
# with GetWriteStream): the default-stream AppendRows call itself is checked
# against bigquery.tables.updateData.
resource "google_project_iam_custom_role" "records_table_writer" {
  project     = var.project_id
  role_id     = "latamRecordsTableWriter"
  title       = "latam records table writer"
  description = "Append rows to one BigQuery table (Storage Write API); granted on the records table only."
  permissions = ["bigquery.tables.updateData"]
  stage       = "GA"
}

resource "google_bigquery_table_iam_member" "subscriber_table_writer" {
  project    = var.project_id
  dataset_id = var.dataset_id
  table_id   = var.table_id
  role       = google_project_iam_custom_role.records_table_writer.name
  member     = "serviceAccount:${google_service_account.subscriber.email}"
}

# Its Prometheus metrics (the freshness SLO's histogram among them) are written to
# Cloud Monitoring by the worker pool's collector sidecar, with the instance's identity.
resource "google_project_iam_member" "subscriber_metric_writer" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.subscriber.email}"
}

# --- Operator: read dead letters, replay them ------------------------------
# manage.py dead_letters pulls, acks and modifyAckDeadlines on the dead-letter
# subscription (pubsub.subscriber) and republishes to the ingest topic
# (pubsub.publisher). It never reads the subscription's configuration, so no
# pubsub.viewer.

resource "google_pubsub_subscription_iam_member" "operator_dead_letter_consume" {
  project      = var.project_id
  subscription = var.dead_letter_subscription_name
  role         = "roles/pubsub.subscriber"
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
