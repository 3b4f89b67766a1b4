#!/usr/bin/env bash
# The test command (README, `make test`, CI): set-up, lint, then the whole suite:
# unit, PostgreSQL/Redis integration, real Asterisk + SIPp, and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
set +e
.venv/bin/pytest -ra ${PYTEST_ARGS:-} "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: treated as a failure" >&2
  exit 1
fi
exit "$code"
