#!/usr/bin/env bash
# Measures what Tollgate adds to a request: latency (proxied minus direct, at p50 and p99) and
# Tollgate's own CPU time per request, against tollgate-sim answering instantly (--time_scale 0).
#
#   BUILD_DIR=build RATES="200 1000 2000" DURATION_S=10 bench/overhead.sh
#
# For each rate it runs tollgate-bench open loop, unary, first straight at the simulator and then
# through Tollgate, back to back; then one streaming pair. It prints a table and writes it, with
# the command and a description of the machine, at the top of bench/RESULTS.md (RESULTS_FILE
# overrides), keeping the sections the other bench scripts write there.
#
# Inputs (environment): BUILD_DIR (default build; holds sim/tollgate-sim, proxy/tollgate and
# bench/tollgate-bench), RATES (default "200 1000 2000", requests/s), DURATION_S (default 10,
# measured seconds per run), WARMUP_S (default 1), STREAM_RATE (default: the first rate),
# RESULTS_FILE. Every process it starts is stopped on exit; every run is bounded by `timeout`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=bench/common.sh
source "${SCRIPT_DIR}/common.sh"
RATES="${RATES:-200 1000 2000}"
STREAM_RATE="${STREAM_RATE:-${RATES%% *}}"
readonly API_KEY="tollgate-bench-overhead-key"

readonly COMMAND_LINE="BUILD_DIR=${BUILD_DIR} RATES=\"${RATES}\" DURATION_S=${DURATION_S} \
WARMUP_S=${WARMUP_S} STREAM_RATE=${STREAM_RATE} bench/overhead.sh"
resolve_build_dir

require_binaries "${BUILD_DIR}/sim/tollgate-sim" "${BUILD_DIR}/proxy/tollgate" \
  "${BUILD_DIR}/bench/tollgate-bench"
require_seconds DURATION_S "${DURATION_S}"
require_seconds WARMUP_S "${WARMUP_S}"
# shellcheck disable=SC2086  # word splitting intended
require_positive_integers rates ${RATES} ${STREAM_RATE}

# Other work on the machine skews the figures; the report says how busy it was.
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
bench_init

# --- start the simulator and Tollgate in front of it -------------------------------------------
start_sim --time_scale 0

API_KEY_SHA256="$(printf %s "${API_KEY}" | sha256sum | cut -d' ' -f1)"
cat >"${WORK_DIR}/tollgate.yaml" <<EOF
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0"}
tenants: [{name: bench, api_key_sha256: ["${API_KEY_SHA256}"]}]
backends: [{name: sim-remote, kind: grpc, address: "${SIM_ADDRESS}"}]
models: [{name: llama-3-8b, backend: sim-remote, prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}}]
EOF
start_tollgate "${WORK_DIR}/tollgate.yaml"
echo "tollgate-sim at ${SIM_ADDRESS} (pid ${SIM_PID}); tollgate at ${TOLLGATE_ADDRESS} (pid ${TOLLGATE_PID})"

# --- measurement helpers ------------------------------------------------------------------------
# pipeline_seconds: "sum count" of tollgate_overhead_seconds (Tollgate's own time per request,
# backend and gRPC transport excluded), summed over models.
pipeline_seconds() {
  curl -fs "http://${METRICS_ADDRESS}/metrics" |
    awk '/^tollgate_overhead_seconds_sum/ { s += $2 } /^tollgate_overhead_seconds_count/ { c += $2 }
         END { printf "%.9f %d\n", s, c }'
}

ROWS=()
TTFT_ROWS=()
# measure_pair MODE RATE: a direct run, then a proxied one; appends a table row.
measure_pair() {
  local mode="$1" rate="$2" direct proxied ticks_before ticks_after sim_before sim_after
  local pipeline_before pipeline_after
  echo "rate ${rate}/s ${mode}: direct..."
  sim_before="$(cpu_ticks "${SIM_PID}")"
  run_bench "direct-${mode}-${rate}" "${SIM_ADDRESS}" "${mode}" "${rate}"
  sim_after="$(cpu_ticks "${SIM_PID}")"
  direct="$(result_line "direct-${mode}-${rate}")"
  echo "rate ${rate}/s ${mode}: through tollgate..."
  ticks_before="$(cpu_ticks "${TOLLGATE_PID}")"
  pipeline_before="$(pipeline_seconds)"
  run_bench "proxied-${mode}-${rate}" "${TOLLGATE_ADDRESS}" "${mode}" "${rate}"
  ticks_after="$(cpu_ticks "${TOLLGATE_PID}")"
  pipeline_after="$(pipeline_seconds)"
  proxied="$(result_line "proxied-${mode}-${rate}")"
  kill -0 "${TOLLGATE_PID}" 2>/dev/null || die "tollgate exited during the run"

  local d50 d99 p50 p99 requests cpu_per_request
  d50="$(field "${direct}" p50_us)"
  d99="$(field "${direct}" p99_us)"
  p50="$(field "${proxied}" p50_us)"
  p99="$(field "${proxied}" p99_us)"
  # The CPU figures cover the warm-up too, so divide by every request completed.
  requests="$(requests_in "${proxied}")"
  cpu_per_request="$(per_request $((ticks_after - ticks_before)) "${requests}")"
  local sim_cpu pipeline_us
  sim_cpu="$(per_request $((sim_after - sim_before)) "$(requests_in "${direct}")")"
  pipeline_us="$(awk -v b="${pipeline_before}" -v a="${pipeline_after}" 'BEGIN {
      split(b, x, " "); split(a, y, " ");
      if (y[2] > x[2]) printf "%.1f", (y[1] - x[1]) * 1e6 / (y[2] - x[2]); else print "n/a" }')"
  local errors
  errors="$(($(field "${direct}" errors) + $(field "${direct}" dropped))) / \
$(($(field "${proxied}" errors) + $(field "${proxied}" dropped)))"
  ROWS+=("$(awk -v r="${rate}" -v m="${mode}" -v d50="${d50}" -v d99="${d99}" -v p50="${p50}" \
    -v p99="${p99}" -v cpu="${cpu_per_request}" -v sim="${sim_cpu}" -v pipe="${pipeline_us}" \
    -v e="${errors}" 'BEGIN {
      printf "| %s | %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %s | %s | %s | %s |",
             r, m, d50, d99, p50, p99, p50 - d50, p99 - d99, cpu, sim, pipe, e }')")
  if [[ "${mode}" == stream ]]; then
    TTFT_ROWS+=("$(awk -v r="${rate}" -v d50="$(field "${direct}" ttft_p50_us)" \
      -v d99="$(field "${direct}" ttft_p99_us)" -v p50="$(field "${proxied}" ttft_p50_us)" \
      -v p99="$(field "${proxied}" ttft_p99_us)" 'BEGIN {
        printf "| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f |",
               r, d50, d99, p50, p99, p50 - d50, p99 - d99 }')")
  fi
  echo "  direct:  ${direct}"
  echo "  proxied: ${proxied}"
}

for rate in ${RATES}; do measure_pair unary "${rate}"; done
measure_pair stream "${STREAM_RATE}"

# --- report -------------------------------------------------------------------------------------
{
  echo "# Tollgate overhead"
  echo
  echo "What Tollgate adds to a request in front of \`tollgate-sim --time_scale 0\` (answers at once),"
  echo "measured by \`bench/overhead.sh\` with \`tollgate-bench\` open loop (latency from the intended"
  echo "send time, so queueing is not hidden). Written by the script; do not edit by hand."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Command: \`${COMMAND_LINE}\`"
  describe_build
  echo "- Load average (1, 5, 15 min): ${LOAD_BEFORE} before the runs, $(cut -d' ' -f1-3 /proc/loadavg) after"
  echo "- Load generator, simulator and Tollgate share the machine's CPUs; each run measures" \
    "${DURATION_S} s after a ${WARMUP_S} s warm-up, with distinct 200-byte prompts and" \
    "max_tokens 16."
  echo
  echo "Latencies in µs as p50 / p99; added = proxied − direct. CPU-µs/req is Tollgate's user +"
  echo "system time (from /proc, ${CLOCK_TICKS_PER_S} ticks/s) over each proxied run divided by the"
  echo "requests it completed; sim CPU-µs/req is the same for tollgate-sim over the direct run,"
  echo "the cost of one gRPC server hop plus generation, for scale. Tollgate makes two hops"
  echo "(client to Tollgate, Tollgate to backend). Pipeline µs/req is Tollgate's own time per"
  echo "request from its \`tollgate_overhead_seconds\` histogram: auth, routing, pricing and metrics,"
  echo "with the backend and the gRPC transport excluded."
  echo "Errors count failed and dropped requests, direct / proxied."
  echo "Each figure comes from one run: on a machine shared with other work a p99 can move by"
  echo "milliseconds from one run to the next, and a negative added p99 means the direct run met"
  echo "more interference than the proxied one."
  echo
  echo "| rate (req/s) | mode | direct p50 / p99 | proxied p50 / p99 | added p50 / p99 | tollgate CPU-µs/req | sim CPU-µs/req | pipeline µs/req | errors |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if ((${#TTFT_ROWS[@]} > 0)); then
    echo
    echo "Streams, time to first message (µs, p50 / p99):"
    echo
    echo "| rate (req/s) | direct | proxied | added |"
    echo "|---|---|---|---|"
    printf '%s\n' "${TTFT_ROWS[@]}"
  fi
} >"${WORK_DIR}/RESULTS.md"

echo
cat "${WORK_DIR}/RESULTS.md"
# This script owns the top of the file, up to the first section another one writes (a line
# `<!-- NAME:begin`: the HTTP path, the response cache); those and everything after them (the
# tokenizer figures, written by hand) are kept.
if grep -q '^<!-- [a-z_]*:begin' "${RESULTS_FILE}" 2>/dev/null; then
  { echo; sed -n '/^<!-- [a-z_]*:begin/,$p' "${RESULTS_FILE}"; } >>"${WORK_DIR}/RESULTS.md"
fi
cp "${WORK_DIR}/RESULTS.md" "${RESULTS_FILE}"
echo
echo "wrote ${RESULTS_FILE}"
