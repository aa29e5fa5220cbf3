#!/usr/bin/env bash
# The project's test command (`make test`, .ci/run): bootstrap, then lint and test, stopping at
# the first failing step. Extra arguments go to pytest, e.g. `bash scripts/test.sh -k keystore`.
#
# Steps: bootstrap, buf lint, [buf breaking], ruff, mypy, pytest.
# Generated protobuf code is not regenerated here: tests/test_protos.py fails when it is stale.
#
# Environment:
#   HUSHTUNE_BUF_BREAKING_AGAINST  unset or empty: skip `buf breaking`.
#                                  "1": compare protos/ with the main branch
#                                  ('.git#branch=main,subdir=protos').
#                                  anything else: a buf input to compare with, e.g.
#                                  '.git#tag=v0.1.0,subdir=protos'.
#                                  Needs the comparison ref in the clone (no shallow clone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
  echo
  echo "==> $*"
}

step "bootstrap"
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

step "buf lint (protos/)"
(cd protos && buf lint)

against="${HUSHTUNE_BUF_BREAKING_AGAINST:-}"
if [[ -n "$against" ]]; then
  [[ "$against" == 1 ]] && against='.git#branch=main,subdir=protos'
  step "buf breaking protos --against '$against'"
  buf breaking protos --against "$against"
fi

step "ruff check ."
ruff check .

step "mypy"
mypy

step "pytest -q $*"
# pytest's exit code alone is not trusted: a run with failures has been seen to exit 0 after
# the mutual-TLS e2e test (tests/conftest.py, pytest_sessionfinish). The session writes its
# own status; anything but 0 there, or no status at all, fails this step.
status_file="$(mktemp)"
code=0
HUSHTUNE_PYTEST_STATUS="$status_file" pytest -q "$@" || code=$?
status="$(tr -d '[:space:]' < "$status_file")"
rm -f "$status_file"
if [[ "$code" != "0" || "$status" != "0" ]]; then
  echo "pytest failed (exit code $code, session status ${status:-none})" >&2
  exit 1
fi

step "all checks passed"
