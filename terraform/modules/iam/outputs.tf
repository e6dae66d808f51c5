output "api_service_account_email" {
  description = "API runtime service account."
  value       = google_service_account.api.email
}

output "api_service_account_name" {
  description = "API runtime service account resource name."
  value       = google_service_account.api.name
}

output "subscriber_service_account_email" {
  description = "Subscriber runtime service account."
  value       = google_service_account.subscriber.email
}

output "subscriber_service_account_name" {
  description = "Subscriber runtime service account resource name."
  value       = google_service_account.subscriber.name
}

output "operator_service_account_email" {
  description = "Operator (dead-letter inspect/replay) service account."
  value       = google_service_account.operator.email
}
