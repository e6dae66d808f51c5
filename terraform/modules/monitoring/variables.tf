variable "project_id" {
  description = "Project monitored."
  type        = string
}

variable "api_service_name" {
  description = "Cloud Run service name of the API."
  type        = string
}

variable "api_host" {
  description = "Host name of the API (uptime check target)."
  type        = string
}

variable "allow_public_access" {
  description = "When false the uptime check authenticates with the Monitoring service agent's OIDC token."
  type        = bool
}

variable "subscriber_name" {
  description = "Worker pool name of the subscriber (dashboard)."
  type        = string
}

variable "subscription_name" {
  description = "Ingest subscription."
  type        = string
}

variable "dead_letter_topic_name" {
  description = "Dead-letter topic."
  type        = string
}

variable "dead_letter_subscription_name" {
  description = "Dead-letter subscription."
  type        = string
}

variable "alert_email" {
  description = "E-mail address alerts are sent to."
  type        = string
}

variable "runbook_base_url" {
  description = "URL prefix of docs/runbooks in the repository; alert documentation links <base>/<name>.md."
  type        = string
}

variable "slo_goal" {
  description = "Availability SLO goal (fraction of non-5xx requests over 28 days)."
  type        = number
}

variable "error_ratio_threshold" {
  description = "5xx ratio that alerts."
  type        = number
}

variable "latency_p95_threshold_ms" {
  description = "p95 latency (ms) that alerts."
  type        = number
}

variable "oldest_unacked_threshold_seconds" {
  description = "Age (s) of the oldest unacked ingest message that alerts."
  type        = number
}

variable "backlog_threshold" {
  description = "Undelivered ingest messages that alert."
  type        = number
}

variable "freshness_goal" {
  description = "Freshness SLO goal: fraction of stored records written within freshness_seconds of their publish, over 28 days."
  type        = number
}

variable "freshness_seconds" {
  description = "Freshness objective (s) from publish to queryable; a bucket bound of latam_ingest_publish_to_stored_seconds."
  type        = number
}
