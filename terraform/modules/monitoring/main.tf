locals {
  run_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.api_service_name}\"",
  ])
  request_count_filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter}"
  request_5xx_filter   = "${local.request_count_filter} AND metric.labels.response_code_class=\"5xx\""
  latency_filter       = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run_filter}"

  subscription_filter = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.subscription_name}\""
  dl_sub_filter       = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.dead_letter_subscription_name}\""
  dl_topic_filter     = "resource.type=\"pubsub_topic\" AND resource.labels.topic_id=\"${var.dead_letter_topic_name}\""

  channels = [google_monitoring_notification_channel.email.id]
}

resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "latam on-call e-mail"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

# ---------------------------------------------------------------------------
# Uptime: /healthz over HTTPS on the service's own host.
# ---------------------------------------------------------------------------

resource "google_monitoring_uptime_check_config" "api_healthz" {
  project      = var.project_id
  display_name = "${var.api_service_name} /healthz"
  timeout      = "10s"
  period       = "60s"

  http_check {
    path           = "/healthz"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"

    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }

    # Private service: the probe carries an OIDC token of the Monitoring
    # service agent, which is granted run.invoker in the run module.
    dynamic "service_agent_authentication" {
      for_each = var.allow_public_access ? [] : [1]
      content {
        type = "OIDC_TOKEN"
      }
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.api_host
    }
  }
}

resource "google_monitoring_alert_policy" "api_uptime" {
  project      = var.project_id
  display_name = "${var.api_service_name}: /healthz uptime check failing"
  combiner     = "OR"
  severity     = "CRITICAL"

  conditions {
    display_name = "uptime check failing from 2+ regions"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.api_healthz.uptime_check_id}\" AND resource.type=\"uptime_url\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "60s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The API's /healthz has failed from more than one checker region: the service is down or unreachable. Runbook: ${var.runbook_base_url}/api-uptime.md"
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------
# Availability SLO: 99.9 % of requests are not 5xx, 28-day rolling window,
# request-based on Cloud Run's own request counts.
# ---------------------------------------------------------------------------

resource "google_monitoring_custom_service" "api" {
  project      = var.project_id
  service_id   = var.api_service_name
  display_name = "latam API (${var.api_service_name})"
}

resource "google_monitoring_slo" "api_availability" {
  project             = var.project_id
  service             = google_monitoring_custom_service.api.service_id
  slo_id              = "availability-28d"
  display_name        = "${var.api_service_name} availability: requests not 5xx (28-day rolling)"
  goal                = var.slo_goal
  rolling_period_days = 28

  request_based_sli {
    good_total_ratio {
      total_service_filter = local.request_count_filter
      bad_service_filter   = local.request_5xx_filter
    }
  }
}

# Multi-window, multi-burn-rate alerts (Google SRE workbook): the long window
# proves the budget is really burning, the short window that it still is.
resource "google_monitoring_alert_policy" "slo_burn_rate_fast" {
  project      = var.project_id
  display_name = "${var.api_service_name}: SLO fast burn (14.4x over 1h and 5m)"
  combiner     = "AND"
  severity     = "CRITICAL"

  conditions {
    display_name = "burn rate > 14.4 over 1h"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.api_availability.name}\", \"3600s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 14.4
      duration        = "0s"
    }
  }

  conditions {
    display_name = "burn rate > 14.4 over 5m"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.api_availability.name}\", \"300s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 14.4
      duration        = "0s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "At this rate 2% of the 28-day error budget is gone in an hour (budget exhausted in ~2 days). Page-worthy. Runbook: ${var.runbook_base_url}/api-slo-burn.md"
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "slo_burn_rate_slow" {
  project      = var.project_id
  display_name = "${var.api_service_name}: SLO slow burn (6x over 6h and 30m)"
  combiner     = "AND"
  severity     = "ERROR"

  conditions {
    display_name = "burn rate > 6 over 6h"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.api_availability.name}\", \"21600s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 6
      duration        = "0s"
    }
  }

  conditions {
    display_name = "burn rate > 6 over 30m"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.api_availability.name}\", \"1800s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 6
      duration        = "0s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "5% of the 28-day error budget burned in 6 hours (budget exhausted in ~5 days). Fix within the working day. Runbook: ${var.runbook_base_url}/api-slo-burn.md"
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------
# Freshness SLO: 99 % of stored records queryable within 60 s of their publish,
# 28-day rolling, request-based on the subscriber's own histogram of publish_time
# → confirmed write (latam_ingest_publish_to_stored_seconds, ingestion/metrics.py).
# The worker pool's Managed Service for Prometheus sidecar (run module) writes it
# as prometheus.googleapis.com/<name>/histogram on the prometheus_target resource,
# whose namespace is the worker pool's name. The objective is one of the
# histogram's bucket bounds, so the cut counts exactly what met it.
# A subscriber that stores nothing observes nothing: a stopped pipeline is caught
# by the oldest-unacked alert below, and its records burn this budget once stored.
# ---------------------------------------------------------------------------

locals {
  freshness_filter = join(" AND ", [
    "metric.type=\"prometheus.googleapis.com/latam_ingest_publish_to_stored_seconds/histogram\"",
    "resource.type=\"prometheus_target\"",
    "resource.labels.namespace=\"${var.subscriber_name}\"",
  ])
}

resource "google_monitoring_custom_service" "ingest" {
  project      = var.project_id
  service_id   = var.subscriber_name
  display_name = "latam ingestion (${var.subscriber_name})"
}

resource "google_monitoring_slo" "ingest_freshness" {
  project             = var.project_id
  service             = google_monitoring_custom_service.ingest.service_id
  slo_id              = "freshness-28d"
  display_name        = "${var.subscriber_name} freshness: records queryable within ${var.freshness_seconds}s of publish (28-day rolling)"
  goal                = var.freshness_goal
  rolling_period_days = 28

  request_based_sli {
    distribution_cut {
      distribution_filter = local.freshness_filter
      # No min: (-infinity, max], every record stored within the objective.
      range {
        max = var.freshness_seconds
      }
    }
  }
}

# The same multi-window burn rates as the availability SLO.
resource "google_monitoring_alert_policy" "ingest_freshness_burn_fast" {
  project      = var.project_id
  display_name = "${var.subscriber_name}: freshness SLO fast burn (14.4x over 1h and 5m)"
  combiner     = "AND"
  severity     = "CRITICAL"

  conditions {
    display_name = "burn rate > 14.4 over 1h"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.ingest_freshness.name}\", \"3600s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 14.4
      duration        = "0s"
    }
  }

  conditions {
    display_name = "burn rate > 14.4 over 5m"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.ingest_freshness.name}\", \"300s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 14.4
      duration        = "0s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Records are reaching BigQuery more than ${var.freshness_seconds}s after their publish so often that 2% of the 28-day freshness budget goes in an hour (exhausted in ~2 days). Page-worthy. Runbook: ${var.runbook_base_url}/ingest-freshness.md"
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "ingest_freshness_burn_slow" {
  project      = var.project_id
  display_name = "${var.subscriber_name}: freshness SLO slow burn (6x over 6h and 30m)"
  combiner     = "AND"
  severity     = "ERROR"

  conditions {
    display_name = "burn rate > 6 over 6h"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.ingest_freshness.name}\", \"21600s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 6
      duration        = "0s"
    }
  }

  conditions {
    display_name = "burn rate > 6 over 30m"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${google_monitoring_slo.ingest_freshness.name}\", \"1800s\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 6
      duration        = "0s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "5% of the 28-day freshness budget (records queryable within ${var.freshness_seconds}s of publish) burned in 6 hours (exhausted in ~5 days). Fix within the working day. Runbook: ${var.runbook_base_url}/ingest-freshness.md"
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------
# API symptoms
# ---------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "api_5xx_ratio" {
  project      = var.project_id
  display_name = "${var.api_service_name}: 5xx ratio above ${var.error_ratio_threshold}"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "5xx / all requests > ${var.error_ratio_threshold}"
    condition_threshold {
      filter             = local.request_5xx_filter
      denominator_filter = local.request_count_filter
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_ratio_threshold
      duration           = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than a ${var.error_ratio_threshold} fraction of API responses are 5xx for 5 minutes (503 = warehouse unavailable/slow, 500 = bug). Runbook: ${var.runbook_base_url}/api-5xx.md"
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "api_latency_p95" {
  project      = var.project_id
  display_name = "${var.api_service_name}: p95 latency above ${var.latency_p95_threshold_ms} ms"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "p95 request latency > ${var.latency_p95_threshold_ms} ms"
    condition_threshold {
      filter          = local.latency_filter
      comparison      = "COMPARISON_GT"
      threshold_value = var.latency_p95_threshold_ms
      duration        = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The API's 95th percentile latency (run.googleapis.com/request_latencies) has been above ${var.latency_p95_threshold_ms} ms for 5 minutes. Runbook: ${var.runbook_base_url}/api-latency.md"
  }

  notification_channels = local.channels
}

# The API logs this WARNING line each time BigQuery refuses one of its read queries
# because its estimate exceeds BIGQUERY_MAX_BYTES_BILLED (bytesBilledLimitExceeded): the
# query is not run nor billed, and the caller gets a 503. On a table clustered on id the
# estimate is the unpruned size of the columns read, so once the table outgrows the bound
# every read of that kind is refused: an operator decides whether to pay more per query.
resource "google_logging_metric" "api_queries_cost_refused" {
  project     = var.project_id
  name        = "latam/api_queries_cost_refused"
  description = "API read queries BigQuery refused because they would bill more than BIGQUERY_MAX_BYTES_BILLED."
  filter      = "severity=WARNING AND jsonPayload.logger=\"records.repository\" AND jsonPayload.message=\"warehouse query refused for its cost\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "operation"
      value_type  = "STRING"
      description = "get, list, list_after or count"
    }
  }

  label_extractors = {
    operation = "EXTRACT(jsonPayload.operation)"
  }
}

resource "google_monitoring_alert_policy" "api_queries_cost_refused" {
  project      = var.project_id
  display_name = "${var.api_service_name}: BigQuery refuses read queries for their cost"
  combiner     = "OR"
  severity     = "CRITICAL"

  conditions {
    display_name = "read queries refused over BIGQUERY_MAX_BYTES_BILLED"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.api_queries_cost_refused.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.operation"]
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "BigQuery refused API read queries because their estimated bytes exceed BIGQUERY_MAX_BYTES_BILLED: nothing was billed, and those requests got a 503. It does not pass by itself (the table only grows): an operator decides whether to raise the bound. Runbook: ${var.runbook_base_url}/api-query-cost.md"
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------
# Pipeline symptoms
# ---------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "ingest_oldest_unacked" {
  project      = var.project_id
  display_name = "${var.subscription_name}: oldest unacked message older than ${var.oldest_unacked_threshold_seconds}s"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "oldest_unacked_message_age > ${var.oldest_unacked_threshold_seconds}s"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.subscription_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_threshold_seconds
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Records published more than ${var.oldest_unacked_threshold_seconds}s ago are still not in BigQuery: the subscriber is down, stuck, or failing transiently. Runbook: ${var.runbook_base_url}/ingest-oldest-unacked.md"
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "ingest_backlog" {
  project      = var.project_id
  display_name = "${var.subscription_name}: backlog above ${var.backlog_threshold} messages"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "num_undelivered_messages > ${var.backlog_threshold}"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.subscription_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.backlog_threshold
      duration        = "600s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MEAN"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The ingest subscription has held more than ${var.backlog_threshold} undelivered messages for 10 minutes: producers outpace the subscribers. Runbook: ${var.runbook_base_url}/ingest-backlog.md"
  }

  notification_channels = local.channels
}

# The subscriber logs this ERROR line at each retry while BigQuery refuses its writes
# for a reason that needs an operator (permission denied, table missing). It holds the
# messages meanwhile and dead-letters none: without this alert, it would wait in silence.
resource "google_logging_metric" "ingest_writes_refused" {
  project     = var.project_id
  name        = "latam/ingest_writes_refused"
  description = "Warehouse writes the subscriber retries because BigQuery refuses them (permission, missing table)."
  filter      = "severity=ERROR AND jsonPayload.logger=\"ingestion.subscriber\" AND jsonPayload.message=\"warehouse refuses writes; holding messages\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "reason"
      value_type  = "STRING"
      description = "denied or missing"
    }
  }

  label_extractors = {
    reason = "EXTRACT(jsonPayload.reason)"
  }
}

resource "google_monitoring_alert_policy" "ingest_writes_refused" {
  project      = var.project_id
  display_name = "${var.subscriber_name}: BigQuery refuses writes"
  combiner     = "OR"
  severity     = "CRITICAL"

  conditions {
    display_name = "writes refused (permission denied or table missing)"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.ingest_writes_refused.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.reason"]
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "BigQuery refuses the subscriber's writes for a reason that does not pass by itself (permission denied, or the table is missing). The subscriber holds the messages (none is lost or dead-lettered) and retries; ingestion is stopped until an operator acts. Runbook: ${var.runbook_base_url}/ingest-writes-refused.md"
  }

  notification_channels = local.channels
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "${var.dead_letter_topic_name}: messages dead-lettered"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "messages published to the dead-letter topic"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\" AND ${local.dl_topic_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.topic_id"]
      }
    }
  }

  conditions {
    display_name = "dead-letter subscription not empty"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dl_sub_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages were dead-lettered (invalid payloads, or transient failures past max delivery attempts). They wait in ${var.dead_letter_subscription_name} for inspection and replay. Runbook: ${var.runbook_base_url}/dead-letters.md"
  }

  notification_channels = local.channels
}

# ---------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------

locals {
  dashboard_tiles = [
    {
      title  = "API requests/s by response class"
      filter = local.request_count_filter
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_code_class"] }
    },
    {
      title  = "API p95 latency (ms)"
      filter = local.latency_filter
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = ["resource.label.service_name"] }
    },
    {
      title  = "API instances"
      filter = "metric.type=\"run.googleapis.com/container/instance_count\" AND ${local.run_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.state"] }
    },
    {
      title  = "Ingest backlog (undelivered messages)"
      filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.subscription_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] }
    },
    {
      title  = "Ingest oldest unacked message age (s)"
      filter = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.subscription_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] }
    },
    {
      title  = "Ingest publish → stored p99 (s), the freshness SLI"
      filter = local.freshness_filter
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_99", groupByFields = [] }
    },
    {
      title  = "Acked messages/s (${var.subscriber_name})"
      filter = "metric.type=\"pubsub.googleapis.com/subscription/ack_message_count\" AND ${local.subscription_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] }
    },
    {
      title  = "Dead-lettered messages"
      filter = "metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\" AND ${local.dl_topic_filter}"
      agg    = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] }
    },
    {
      title  = "Dead-letter subscription backlog"
      filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dl_sub_filter}"
      agg    = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] }
    },
  ]
}

resource "google_monitoring_dashboard" "latam" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "latam data platform"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, t in local.dashboard_tiles : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = t.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter      = t.filter
                    aggregation = t.agg
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })
}
