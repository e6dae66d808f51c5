variable "project_id" {
  description = "Project that owns the topics and subscriptions."
  type        = string
}

variable "project_number" {
  description = "Project number; names the Pub/Sub service agent (service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string
}

variable "topic_name" {
  description = "Ingest topic producers publish Records to."
  type        = string
}

variable "subscription_name" {
  description = "Subscription run_subscriber pulls from."
  type        = string
}

variable "dead_letter_topic_name" {
  description = "Topic that receives invalid (permanent failure) and exhausted (max attempts) messages."
  type        = string
}

variable "dead_letter_subscription_name" {
  description = "Subscription on the dead-letter topic used to inspect and replay dead letters."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Deliveries before Pub/Sub forwards a message to the dead-letter topic (Pub/Sub accepts 5-100)."
  type        = number
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the ingest subscription."
  type        = number
}

variable "retry_minimum_backoff" {
  description = "Minimum exponential backoff between redeliveries of a nacked message."
  type        = string
}

variable "retry_maximum_backoff" {
  description = "Maximum exponential backoff between redeliveries of a nacked message."
  type        = string
}

variable "topic_message_retention" {
  description = "How long the ingest topic retains published messages (enables seek/replay to a timestamp for new subscriptions)."
  type        = string
}

variable "subscription_message_retention" {
  description = "How long unacked messages stay in the ingest subscription."
  type        = string
}

variable "dead_letter_retention" {
  description = "How long dead letters stay available for inspection and replay."
  type        = string
}

variable "labels" {
  description = "Labels applied to every topic and subscription."
  type        = map(string)
}
