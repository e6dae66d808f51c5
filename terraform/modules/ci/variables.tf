variable "project_id" {
  description = "Project CI deploys to."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run resources and the repository."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may deploy."
  type        = string
}

variable "allowed_subjects" {
  description = "Suffixes of the OIDC sub claim (after repo:<owner>/<name>:) allowed to deploy, e.g. ref:refs/heads/main or environment:production."
  type        = list(string)
}

variable "pool_id" {
  description = "Workload Identity pool id."
  type        = string
}

variable "repository_id" {
  description = "Artifact Registry repository CI pushes to."
  type        = string
}

variable "api_service_name" {
  description = "Cloud Run service CI deploys."
  type        = string
}

variable "subscriber_name" {
  description = "Cloud Run worker pool CI deploys."
  type        = string
}

variable "runtime_service_account_names" {
  description = "Resource names of the runtime service accounts CI may deploy as (and only those)."
  type        = map(string)
}
