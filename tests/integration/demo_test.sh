#!/usr/bin/env bash
# Runs scripts/demo with 5 s of traffic and checks that it shows a non-zero
# tollgate_cost_usd_total series (the demo prints its first figures 5 s into the traffic).
set -euo pipefail
source_dir="$1"
build_dir="$2"
out="$(BUILD_DIR="${build_dir}" DURATION_S=5 timeout 180 "${source_dir}/scripts/demo" 2>&1)" || {
  echo "${out}"
  echo "FAIL: scripts/demo exited non-zero"
  exit 1
}
echo "${out}" | tail -n 25
first_cost="$(echo "${out}" | grep -m1 -E '^tollgate_cost_usd_total\{.*\} [0-9.e+-]+$' | grep -vE ' 0$' || true)"
if [[ -z "${first_cost}" ]]; then
  echo "FAIL: no non-zero tollgate_cost_usd_total line in the demo's output"
  exit 1
fi
grep -q '^demo: stopped' <<<"${out}" || { echo "FAIL: the demo did not stop cleanly"; exit 1; }
grep -qiE '^x-tollgate-cost-usd: 0\.[0-9]{9}' <<<"${out}" ||
  { echo "FAIL: the demo's HTTP call showed no cost header"; exit 1; }
grep -qiE '^second: x-tollgate-cache: hit' <<<"${out}" ||
  { echo "FAIL: the demo's repeated call was not served from the cache"; exit 1; }
echo "PASS: ${first_cost}"
