#!/usr/bin/env bash
# Offline checks of terraform/: checkov policy scan, formatting, then the real
# `terraform validate` (terraform/validate/: a schema-only google provider attached
# with TF_REATTACH_PROVIDERS, so nothing is downloaded) and the tests that break
# copies of the tree and expect validate to refuse them.
# Usage: CHECKOV=.venv-iac/bin/checkov PYTHON=.venv/bin/python bash terraform/check.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

CHECKOV="${CHECKOV:-checkov}"
PYTHON="${PYTHON:-.venv/bin/python}"

# --skip-download: no Bridgecrew/Prisma platform calls, no policy downloads.
# Suppressions live next to the resource as #checkov:skip=<id>:<reason>.
"$CHECKOV" -d terraform --skip-download --quiet --compact --framework terraform

if command -v terraform >/dev/null 2>&1; then
  terraform fmt -check -recursive terraform
  echo "terraform fmt: ok"
  # Validates terraform/ (in a temporary copy), then proves that validate refuses
  # broken copies (terraform/tests/test_validate.py; make test's pytest run leaves
  # these to this script).
  "$PYTHON" terraform/validate/run_validate.py --require-terraform
  "$PYTHON" -m pytest -q -p no:cacheprovider -m terraform_validate terraform/tests/test_validate.py
else
  echo "SKIPPED: terraform fmt (no terraform binary)"
  # Prints the loud `SKIPPED: terraform validate (no terraform binary)` banner.
  "$PYTHON" terraform/validate/run_validate.py
  echo "SKIPPED: terraform_validate tests of terraform/tests/test_validate.py (no terraform binary)"
fi
