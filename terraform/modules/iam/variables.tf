variable "project_id" {
  description = "Project that owns the service accounts."
  type        = string
}

variable "dataset_id" {
  description = "Dataset of the records table."
  type        = string
}

variable "table_id" {
  description = "Records table the API reads and the subscriber appends to (both granted on the table only)."
  type        = string
}

variable "topic_name" {
  description = "Ingest topic (the operator republishes replayed dead letters to it)."
  type        = string
}

variable "subscription_name" {
  description = "Ingest subscription the subscriber consumes."
  type        = string
}

variable "dead_letter_topic_name" {
  description = "Dead-letter topic the subscriber publishes invalid messages to."
  type        = string
}

variable "dead_letter_subscription_name" {
  description = "Dead-letter subscription the operator inspects and drains."
  type        = string
}

variable "operator_members" {
  description = "Principals (e.g. group:oncall@example.com) allowed to impersonate the operator account to inspect and replay dead letters."
  type        = list(string)
}
