variable "project_id" {
  description = "Project that owns the network and the instance."
  type        = string
}

variable "region" {
  description = "Region of the instance and the Cloud Run egress subnet (same as Cloud Run)."
  type        = string
}

variable "subnet_cidr" {
  description = "CIDR of the subnet Cloud Run Direct VPC egress takes addresses from (/26 or larger)."
  type        = string
}

variable "tier" {
  description = "Memorystore tier (BASIC or STANDARD_HA)."
  type        = string
}

variable "memory_size_gb" {
  description = "Instance memory in GiB."
  type        = number
}

variable "redis_version" {
  description = "Redis version, e.g. REDIS_7_2."
  type        = string
}

variable "api_service_account_email" {
  description = "API identity that reads the CACHE_URL secret."
  type        = string
}

variable "labels" {
  description = "Labels applied to the instance and secret."
  type        = map(string)
}
