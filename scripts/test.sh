#!/usr/bin/env bash
# The test command (README, `make test`, CI): set-up, ruff, mypy --strict, then the whole suite
# (the layering test tests/unit/test_layers.py among it):
# unit, PostgreSQL/Redis integration, real Asterisk + SIPp, and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy   # strict, on hotline/ screenpop/ ivr_flows/ dialplans/ (pyproject.toml [tool.mypy])
set +e
.venv/bin/pytest -ra ${PYTEST_ARGS:-} "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: treated as a failure" >&2
  exit 1
fi
exit "$code"
