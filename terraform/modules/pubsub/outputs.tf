output "topic_name" {
  description = "Ingest topic name."
  value       = google_pubsub_topic.ingest.name
}

output "topic_id" {
  description = "Ingest topic id (projects/<p>/topics/<name>)."
  value       = google_pubsub_topic.ingest.id
}

output "subscription_name" {
  description = "Ingest subscription name."
  value       = google_pubsub_subscription.ingest.name
}

output "dead_letter_topic_name" {
  description = "Dead-letter topic name."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription_name" {
  description = "Dead-letter subscription name."
  value       = google_pubsub_subscription.dead_letter.name
}
