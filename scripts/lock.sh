#!/usr/bin/env bash
# Compile each requirements*.in (direct dependencies, pinned) into its requirements*.txt:
# every transitive dependency, pinned, with the hashes of its files on PyPI, so that
# `pip install --require-hashes` installs exactly what was reviewed. The runtime lock
# comes first: the dev lock is constrained to its versions. Dependabot (pip) keeps the
# .in/.txt pairs up to date; run `make lock` after editing a .in file by hand.
# Usage: LOCK_COMPILE=.venv/bin/pip-compile bash scripts/lock.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

compile="${LOCK_COMPILE:-pip-compile}"
for name in requirements requirements-dev requirements-iac; do
  # PyPI only: a machine's own pip configuration (extra indexes, local wheels) must not
  # leak into the lock.
  PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS="" "$compile" --quiet --generate-hashes \
    --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
    --output-file "$name.txt" "$name.in"
done
