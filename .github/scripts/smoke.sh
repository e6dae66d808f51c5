#!/usr/bin/env bash
# Post-deploy smoke test of the records API (run by .github/workflows/deploy.yml).
#
#   SMOKE_BASE_URL=https://latam-api-….run.app [SMOKE_ID_TOKEN=…] .github/scripts/smoke.sh
#
# Checks, each retried (cold starts, revision warm-up) with bounded time per request:
#   GET /healthz                    -> 200
#   GET /readyz                     -> 200 (warehouse reachable)
#   GET /records?limit=1            -> 200, JSON array of at most 1 record, X-Total-Count integer
#   GET /records/__smoke_missing__  -> 404, JSON {"error": "..."}
# Exits 0 when all pass, 1 otherwise. The identity token (when given) is passed to curl
# through a header file, so it never appears in the process list or the log.
set -euo pipefail

base_url="${SMOKE_BASE_URL:?SMOKE_BASE_URL is required}"
base_url="${base_url%/}"
attempts="${SMOKE_ATTEMPTS:-10}"
retry_delay="${SMOKE_RETRY_DELAY_SECONDS:-6}"
max_time="${SMOKE_MAX_TIME_SECONDS:-15}"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

curl_args=(--silent --show-error --connect-timeout 5 --max-time "$max_time"
  --header "Accept: application/json" --user-agent "latam-smoke/1")
if [[ -n "${SMOKE_ID_TOKEN:-}" ]]; then
  (umask 077 && printf 'Authorization: Bearer %s\n' "$SMOKE_ID_TOKEN" >"$workdir/auth-header")
  curl_args+=(--header "@$workdir/auth-header")
fi

# validate KIND HEADERS_FILE BODY_FILE -> exit 0 when the response has the expected shape.
validate() {
  python3 - "$@" <<'PY'
import json
import sys

kind, headers_path, body_path = sys.argv[1:4]
with open(headers_path, encoding="latin-1") as fh:
    blocks = [b for b in fh.read().replace("\r\n", "\n").split("\n\n") if b.strip()]
headers = {}
for line in (blocks[-1].splitlines()[1:] if blocks else []):
    name, _, value = line.partition(":")
    headers[name.strip().lower()] = value.strip()
try:
    with open(body_path, encoding="utf-8") as fh:
        body = json.load(fh)
except (OSError, ValueError) as error:
    sys.exit(f"body is not JSON: {error}")
if "json" not in headers.get("content-type", ""):
    sys.exit(f"content-type is not JSON: {headers.get('content-type')!r}")

if kind == "records":
    if not isinstance(body, list):
        sys.exit(f"expected a JSON array, got {type(body).__name__}")
    if len(body) > 1:
        sys.exit(f"limit=1 returned {len(body)} records")
    for record in body:
        if not isinstance(record, dict) or not {"id", "nombre", "apellido", "pais"} <= record.keys():
            sys.exit("record lacks id/nombre/apellido/pais")
    total = headers.get("x-total-count")
    if total is None or not total.isdigit():
        sys.exit(f"X-Total-Count missing or not an integer: {total!r}")
    if int(total) < len(body):
        sys.exit(f"X-Total-Count {total} < records returned {len(body)}")
elif kind == "error":
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        sys.exit('expected {"error": "..."}')
elif kind != "any":
    sys.exit(f"unknown check kind {kind}")
PY
}

# check NAME PATH EXPECTED_STATUS KIND
check() {
  local name="$1" path="$2" expected="$3" kind="$4"
  local attempt status reason
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    status="$(curl "${curl_args[@]}" --output "$workdir/body" --dump-header "$workdir/headers" \
      --write-out '%{http_code}' "${base_url}${path}" 2>"$workdir/curl-error")" || status="000"
    if [[ "$status" == "$expected" ]]; then
      if [[ "$kind" == "status" ]] || reason="$(validate "$kind" "$workdir/headers" "$workdir/body" 2>&1)"; then
        echo "PASS  ${name}: GET ${path} -> ${status} (attempt ${attempt}/${attempts})"
        return 0
      fi
    else
      reason="HTTP ${status}, expected ${expected}"
      [[ "$status" == "000" ]] && reason="request failed: $(head -c 200 "$workdir/curl-error")"
    fi
    echo "retry ${name}: ${reason} (attempt ${attempt}/${attempts})"
    if ((attempt < attempts)); then sleep "$retry_delay"; fi
  done
  echo "FAIL  ${name}: GET ${path}: ${reason}"
  # A short excerpt of an error answer, for diagnosis. Successful bodies are not printed:
  # they hold records (people's names), and this log may be public.
  if [[ "$status" != 2* && -s "$workdir/body" ]]; then
    echo "      body: $(head -c 300 "$workdir/body" | tr -d '\n')"
  fi
  return 1
}

echo "Smoke-testing ${base_url}"
failures=0
check "liveness" "/healthz" 200 status || failures=$((failures + 1))
check "readiness" "/readyz" 200 status || failures=$((failures + 1))
check "records list" "/records?limit=1" 200 records || failures=$((failures + 1))
check "missing record" "/records/__smoke_missing__" 404 error || failures=$((failures + 1))

if ((failures > 0)); then
  echo "Smoke test FAILED: ${failures} check(s) did not pass."
  exit 1
fi
echo "Smoke test passed."
