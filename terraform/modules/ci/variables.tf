variable "project_id" {
  description = "Project CI deploys to."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run resources and the repository."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose deploy workflow may push and deploy."
  type        = string
}

variable "github_repository_id" {
  description = "GitHub's numeric id of github_repository (the OIDC repository_id claim)."
  type        = string
}

variable "deploy_workflow_path" {
  description = "Path of the deploy workflow in the repository (the file part of job_workflow_ref)."
  type        = string
  default     = ".github/workflows/deploy.yml"
}

variable "deploy_branch" {
  description = "Branch the deploy workflow must run from (job_workflow_ref and the pusher's subject)."
  type        = string
  default     = "main"
}

variable "deploy_environment" {
  description = "GitHub environment whose jobs may impersonate the deployer."
  type        = string
  default     = "production"
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

variable "ingest_topic_name" {
  description = "Ingest topic the post-deploy smoke test publishes one record to."
  type        = string
}
