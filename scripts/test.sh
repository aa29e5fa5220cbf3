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
pytest -q "$@"

step "all checks passed"
