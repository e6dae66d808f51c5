#!/usr/bin/env bash
# Post-deploy smoke test of the write path (run by .github/workflows/deploy.yml after
# smoke.sh): publish one record to the ingest topic, then read it back through the API,
# which proves the subscriber consumed it and BigQuery stored it.
#
#   SMOKE_BASE_URL=https://latam-api-….run.app SMOKE_PROJECT=my-project \
#   SMOKE_TOPIC=data-ingest-topic SMOKE_RECORD_ID=smoke-<sha>-<run> \
#   [SMOKE_ID_TOKEN=…] .github/scripts/smoke_pipeline.sh
#
# Environment:
#   SMOKE_BASE_URL                  API base URL (required)
#   SMOKE_PROJECT                   project of the topic (required)
#   SMOKE_TOPIC                     ingest topic name or projects/…/topics/… (required)
#   SMOKE_RECORD_ID                 id of the record to publish (default smoke-<epoch>-<pid>);
#                                   1-128 characters of [A-Za-z0-9._-], so it is its own URL
#   SMOKE_ID_TOKEN                  identity token for a private API (optional)
#   SMOKE_PIPELINE_TIMEOUT_SECONDS  how long the record may take to be readable (default 300)
#   SMOKE_POLL_SECONDS              pause between reads (default 5)
#   SMOKE_MAX_TIME_SECONDS          bound of one HTTP request (default 15)
#   GCLOUD                          gcloud executable (default gcloud), authenticated
#
# The record stays in the table: the subscriber cannot delete, and the id says what it is.
# Exits 0 once GET /records/<id> answers 200 with exactly the published fields, 1 when
# publishing fails or the deadline passes. The identity token is passed to curl through a
# header file, so it never appears in the process list or the log.
set -euo pipefail

base_url="${SMOKE_BASE_URL:?SMOKE_BASE_URL is required}"
base_url="${base_url%/}"
project="${SMOKE_PROJECT:?SMOKE_PROJECT is required}"
topic="${SMOKE_TOPIC:?SMOKE_TOPIC is required}"
record_id="${SMOKE_RECORD_ID:-smoke-$(date +%s)-$$}"
timeout="${SMOKE_PIPELINE_TIMEOUT_SECONDS:-300}"
poll="${SMOKE_POLL_SECONDS:-5}"
max_time="${SMOKE_MAX_TIME_SECONDS:-15}"
gcloud_bin="${GCLOUD:-gcloud}"

if [[ ! "$record_id" =~ ^[A-Za-z0-9._-]{1,128}$ ]]; then
  echo "SMOKE_RECORD_ID must be 1-128 characters of [A-Za-z0-9._-]: '${record_id}'" >&2
  exit 2
fi
for name in timeout poll max_time; do
  if [[ ! "${!name}" =~ ^[0-9]+$ ]]; then
    echo "${name} must be a whole number of seconds: '${!name}'" >&2
    exit 2
  fi
done

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

curl_args=(--silent --show-error --connect-timeout 5 --max-time "$max_time"
  --header "Accept: application/json" --user-agent "latam-smoke-pipeline/1")
if [[ -n "${SMOKE_ID_TOKEN:-}" ]]; then
  (umask 077 && printf 'Authorization: Bearer %s\n' "$SMOKE_ID_TOKEN" >"$workdir/auth-header")
  curl_args+=(--header "@$workdir/auth-header")
fi

# What a producer sends (the README's contract), nothing personal.
nombre="Smoke"
apellido="Deploy"
pais="Chile"
payload="$(jq -cn --arg id "$record_id" --arg nombre "$nombre" --arg apellido "$apellido" \
  --arg pais "$pais" '{id: $id, nombre: $nombre, apellido: $apellido, pais: $pais}')"

echo "Publishing record ${record_id} to ${topic} (project ${project})"
if ! message_id="$("$gcloud_bin" pubsub topics publish "$topic" --project "$project" \
  --message "$payload" --format='value(messageIds)' 2>"$workdir/publish-error")"; then
  echo "FAIL  publish: $(head -c 300 "$workdir/publish-error")"
  exit 1
fi
echo "Published as message ${message_id:-<unknown>}; reading it back from ${base_url}"

url="${base_url}/records/${record_id}"
deadline=$((SECONDS + timeout))
attempt=0
reason="not read yet"
while :; do
  attempt=$((attempt + 1))
  status="$(curl "${curl_args[@]}" --output "$workdir/body" --write-out '%{http_code}' \
    "$url" 2>"$workdir/curl-error")" || status="000"
  if [[ "$status" == "200" ]]; then
    if jq -e --arg id "$record_id" --arg nombre "$nombre" --arg apellido "$apellido" \
      --arg pais "$pais" \
      '. == {id: $id, nombre: $nombre, apellido: $apellido, pais: $pais}' \
      "$workdir/body" >/dev/null 2>&1; then
      echo "PASS  pipeline: GET /records/${record_id} -> 200 with the published record (attempt ${attempt})"
      exit 0
    fi
    reason="200 but not the published record"
  elif [[ "$status" == "404" ]]; then
    reason="not stored yet (404)"
  elif [[ "$status" == "000" ]]; then
    reason="request failed: $(head -c 200 "$workdir/curl-error")"
  else
    reason="HTTP ${status}: $(head -c 200 "$workdir/body" | tr -d '\n')"
  fi
  if ((SECONDS >= deadline)); then
    break
  fi
  echo "wait  pipeline: ${reason} (attempt ${attempt})"
  sleep "$poll"
done
echo "FAIL  pipeline: record ${record_id} not readable through the API within ${timeout}s: ${reason}"
echo "      (subscriber logs, the ingest subscription's backlog and the dead-letter topic tell why)"
exit 1
