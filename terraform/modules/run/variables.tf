variable "project_id" {
  description = "Project that runs the workloads."
  type        = string
}

variable "project_number" {
  description = "Project number; names the Monitoring service agent that runs the uptime check."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "image" {
  description = "Container image by digest (…@sha256:…), shared by the API and the subscriber."
  type        = string
}

variable "api_service_name" {
  description = "Cloud Run service name of the API."
  type        = string
}

variable "subscriber_name" {
  description = "Cloud Run worker pool name of the subscriber."
  type        = string
}

variable "api_service_account_email" {
  description = "Runtime identity of the API."
  type        = string
}

variable "subscriber_service_account_email" {
  description = "Runtime identity of the subscriber."
  type        = string
}

variable "api_min_instances" {
  description = "Minimum API instances."
  type        = number
}

variable "api_max_instances" {
  description = "Maximum API instances."
  type        = number
}

variable "gunicorn_workers" {
  description = "gunicorn worker processes per API instance (GUNICORN_WORKERS)."
  type        = number
}

variable "gunicorn_threads" {
  description = "gunicorn threads per worker (GUNICORN_THREADS)."
  type        = number
}

variable "api_cpu" {
  description = "vCPUs per API instance."
  type        = string
}

variable "api_memory" {
  description = "Memory per API instance."
  type        = string
}

variable "api_request_timeout" {
  description = "Cloud Run request timeout of the API."
  type        = string
}

variable "api_throttle_rate" {
  description = "DRF throttle per client address (API_THROTTLE_RATE), empty to disable."
  type        = string
}

variable "api_ingress" {
  description = "Cloud Run ingress setting of the API."
  type        = string
}

variable "subscriber_instance_count" {
  description = "Always-on subscriber instances sharing the subscription."
  type        = number
}

variable "subscriber_streams" {
  description = "Streaming pulls per subscriber instance (INGEST_STREAMS)."
  type        = number
}

variable "subscriber_cpu" {
  description = "vCPUs per subscriber instance."
  type        = string
}

variable "subscriber_memory" {
  description = "Memory per subscriber instance."
  type        = string
}

variable "metrics_port" {
  description = "Port of the subscriber's Prometheus endpoint (METRICS_PORT)."
  type        = number
}

variable "app_env" {
  description = "Application environment shared by both workloads (GCP_PROJECT, BIGQUERY_*, PUBSUB_*, DJANGO_ALLOWED_HOSTS…)."
  type        = map(string)
}

variable "secret_key_secret_id" {
  description = "Secret Manager secret id holding DJANGO_SECRET_KEY."
  type        = string
}

variable "invokers" {
  description = "Principals granted roles/run.invoker on the API."
  type        = list(string)
}

variable "allow_public_access" {
  description = "Grant roles/run.invoker to allUsers on the API."
  type        = bool
}

variable "enable_redis" {
  description = "Wire Direct VPC egress and CACHE_URL for the Memorystore cache."
  type        = bool
}

variable "vpc_network" {
  description = "VPC network for Direct VPC egress (when enable_redis)."
  type        = string
}

variable "vpc_subnetwork" {
  description = "Subnetwork for Direct VPC egress (when enable_redis)."
  type        = string
}

variable "cache_url_secret_id" {
  description = "Secret Manager secret id holding CACHE_URL (when enable_redis)."
  type        = string
}

variable "cache_ca_secret_id" {
  description = "Secret Manager secret id holding the Memorystore server CAs, mounted into the API as CACHE_REDIS_CA_FILE (when enable_redis)."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run resources."
  type        = bool
}

variable "labels" {
  description = "Labels applied to the Cloud Run resources."
  type        = map(string)
}

variable "metrics_collector_image" {
  description = "Managed Service for Prometheus collector sidecar of the subscriber (Google's cloud-run-gmp-sidecar image, pinned)."
  type        = string
}

variable "metrics_collector_config_secret_id" {
  description = "Secret holding the collector's RunMonitoring document (mounted at /etc/rungmp/config.yaml)."
  type        = string
}

variable "metrics_collector_config_version" {
  description = "Version of that secret to mount (pinned, so a new configuration rolls a new revision)."
  type        = string
}
