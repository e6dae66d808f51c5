variable "project_id" {
  description = "Project that owns the datasets."
  type        = string
}

variable "project_number" {
  description = "Project number; names the BigQuery Data Transfer service agent."
  type        = string
}

variable "dataset_id" {
  description = "Primary dataset id."
  type        = string
}

variable "table_id" {
  description = "Records table id."
  type        = string
}

variable "location" {
  description = "Primary dataset location."
  type        = string
}

variable "max_time_travel_hours" {
  description = "Time-travel window of the primary dataset, in hours (48-168)."
  type        = number
}

variable "dr_enabled" {
  description = "Create the cross-region replica dataset and the scheduled copy into it."
  type        = bool
}

variable "dr_location" {
  description = "Location of the replica dataset."
  type        = string
}

variable "dr_copy_schedule" {
  description = "Schedule of the cross-region copy (BigQuery Data Transfer syntax, at least every 12 hours)."
  type        = string
}

variable "labels" {
  description = "Labels applied to datasets and tables."
  type        = map(string)
}

variable "query_usage_per_user_per_day_tib" {
  description = "BigQuery custom quota QueryUsagePerUserPerDay, in TiB scanned per principal per day (converted to the quota's MiB)."
  type        = number
}
