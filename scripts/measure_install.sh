#!/usr/bin/env bash
# Install this checkout with some extras into a new venv and measure it: the figures of
# docs/INSTALL.md. Nothing here touches .venv.
#
#   bash scripts/measure_install.sh ""            # the plain install (what an app embeds)
#   bash scripts/measure_install.sh server        # + the services
#   bash scripts/measure_install.sh server,build  # + the catalog builder (the service image)
#
# Prints the install's wall-clock seconds, the venv's size (du), whether torch or the CUDA
# libraries came along, and the largest packages. VENV (default /tmp/hushtune-measure-EXTRAS)
# is created anew; pip reads the machine's configuration as usual, and its cache is not used,
# so every file is downloaded (or read from the machine's local indexes).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1-}
venv=${VENV:-/tmp/hushtune-measure-${extras:-plain}}
venv=${venv//,/-}
target=$repo
[[ -n "$extras" ]] && target="$repo[$extras]"

rm -rf "$venv"
python3.11 -m venv "$venv"
started=$(date +%s.%N)
status=0
log=$(mktemp)
"$venv/bin/pip" install --quiet --no-cache-dir "$target" >"$log" 2>&1 || status=$?
grep -v "^WARNING: Location" "$log" || true  # the machine's local indexes lack most names
rm -f "$log"
[[ $status == 0 ]] || { echo "pip install failed ($status)" >&2; exit "$status"; }
ended=$(date +%s.%N)
"$venv/bin/python" -c 'import hushtune.sdk' # the install must at least import
size=$(du -sm "$venv" | cut -f1)
torch=$("$venv/bin/python" -c 'import importlib.metadata as m
try: print(m.version("torch"))
except m.PackageNotFoundError: print("none")')
cuda=$(du -smc "$venv"/lib/python3.11/site-packages/nvidia 2>/dev/null | tail -1 | cut -f1 || true)
echo "extras=[${extras}] install_s=$(python3 -c "print(round($ended - $started))") venv_mb=$size torch=$torch" \
  "nvidia_mb=${cuda:-0}"
du -sm "$venv"/lib/python3.11/site-packages/* | sort -rn | head -8 | sed 's|/.*/site-packages/|  |'
