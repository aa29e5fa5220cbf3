#!/usr/bin/env bash
# Set up the development environment; safe to run again and again (fast when nothing changed).
#
#   1. create .venv with Python 3.11 if it is missing;
#   2. pip install --require-hashes -r requirements-dev.lock (every package pinned, every file
#      checked against its hash), skipped while .venv/.requirements.sha256 matches the lock;
#   0. the Debian package espeak-ng (the benchmark's speech babble) when it is missing and this
#      runs as root with apt-get; otherwise it says how to get it;
#   3. pip install -e . --no-deps, skipped while .venv/.editable.sha256 matches pyproject.toml
#      and the list of packages under hushtune/ (the editable install only maps the packages
#      that exist when it runs, so a new package re-runs it).
#
# The lock is made from pyproject.toml's [dev] extra by `make lock` (docs/INSTALL.md).
#
# pip reads the machine's constraints (/etc/xdg/pip) as usual; nothing here changes them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
PY="$VENV/bin/python"

if ! command -v espeak-ng >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing espeak-ng (speech babble for the benchmark and its tests)"
    apt-get install -y -qq espeak-ng >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq espeak-ng >/dev/null; }
  else
    echo "bootstrap: espeak-ng is missing; the benchmark's babble needs it" \
      "(sudo apt-get install espeak-ng)" >&2
  fi
fi

find_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"
      return 0
    fi
  done
  echo "bootstrap: Python 3.11 is required (neither python3.11 nor python3 is 3.11)" >&2
  return 1
}

if [[ ! -x "$PY" ]]; then
  python=$(find_python)
  echo "bootstrap: creating $VENV with $python"
  "$python" -m venv "$VENV"
fi

LOCK=requirements-dev.lock
requirements_hash=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [[ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$requirements_hash" ]]; then
  echo "bootstrap: installing $LOCK (hash-checked)"
  "$PY" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$LOCK"
  echo "$requirements_hash" >"$VENV/.requirements.sha256"
fi

editable_hash=$(
  {
    sha256sum pyproject.toml
    find hushtune -name __init__.py | sort
  } | sha256sum | cut -d' ' -f1
)
if [[ "$(cat "$VENV/.editable.sha256" 2>/dev/null)" != "$editable_hash" ]]; then
  echo "bootstrap: installing the project (editable)"
  log=$(mktemp)
  if ! "$PY" -m pip install --quiet --disable-pip-version-check -e . --no-deps >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "$editable_hash" >"$VENV/.editable.sha256"
fi
