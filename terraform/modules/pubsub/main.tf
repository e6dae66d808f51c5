locals {
  # Google-managed identity that moves messages to the dead-letter topic.
  pubsub_service_agent = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "ingest" {
  project                    = var.project_id
  name                       = var.topic_name
  message_retention_duration = var.topic_message_retention
  labels                     = var.labels
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest is the accepted baseline for this data; CMEK would add a KMS key ring and service-agent grants to operate.
}

resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = var.dead_letter_topic_name
  message_retention_duration = var.dead_letter_retention
  labels                     = var.labels
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest is the accepted baseline for this data; CMEK would add a KMS key ring and service-agent grants to operate.
}

resource "google_pubsub_subscription" "ingest" {
  project = var.project_id
  name    = var.subscription_name
  topic   = google_pubsub_topic.ingest.id
  labels  = var.labels

  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.subscription_message_retention
  retain_acked_messages      = false
  # The subscriber de-duplicates by message_id itself; exactly-once delivery
  # would cap streaming-pull throughput for no gain.
  enable_exactly_once_delivery = false

  # Never delete the subscription for inactivity (the default TTL is 31 days).
  expiration_policy {
    ttl = ""
  }

  # Transient failures are nacked; redeliveries back off exponentially.
  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  # Caps the attempts of a message that keeps failing (poison message).
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = var.dead_letter_subscription_name
  topic   = google_pubsub_topic.dead_letter.id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention
  # Keep acked dead letters too, so an operator can seek back and replay them.
  retain_acked_messages = true

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent, not by our code. Without
# these two grants the subscription accepts the dead_letter_policy but dead
# letters silently never arrive: messages are redelivered forever instead.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher_service_agent" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "source_subscriber_service_agent" {
  project      = var.project_id
  subscription = google_pubsub_subscription.ingest.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
