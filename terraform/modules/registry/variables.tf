variable "project_id" {
  description = "Project that owns the repository."
  type        = string
}

variable "location" {
  description = "Repository region (same as Cloud Run to keep pulls regional)."
  type        = string
}

variable "repository_id" {
  description = "Docker repository id."
  type        = string
}

variable "keep_recent_versions" {
  description = "Image versions always kept by the cleanup policy (rollback targets)."
  type        = number
}

variable "untagged_retention" {
  description = "Age after which untagged images are deleted (duration, e.g. 1209600s)."
  type        = string
}

variable "labels" {
  description = "Labels applied to the repository."
  type        = map(string)
}
