#!/usr/bin/env bash
# Measures what dynamic batching (issue 7) buys against a backend that runs one call at a time:
# tollgate-sim in static-batch mode, where a call of B prompts takes t_1 × (1 + f × (B − 1)), so
# that B prompts in one call are ideally B / (1 + f × (B − 1)) times the throughput of B calls.
#
#   BUILD_DIR=build CONCURRENCY=64 DURATION_S=10 bench/batching.sh
#
# One simulator serves every run. First one closed-loop client straight to the simulator gives
# t_1 (one call's latency alone). Then the same closed-loop load (wrk, CONCURRENCY connections,
# each sending its next /v1/completions prompt request when the previous one is answered; distinct
# prompts of one length, max_tokens 16, temperature 0.7, no response cache configured) goes
# through Tollgate's HTTP ingress and `openai` backend with batching off, then on
# (backends[].batching: max_batch_size MAX_BATCH, max_queue_delay_us QUEUE_DELAY_US,
# max_in_flight_batches MAX_IN_FLIGHT), each on a
# fresh Tollgate after a WARMUP_S warm-up run. It prints and writes to the "Dynamic batching"
# section of bench/RESULTS.md (RESULTS_FILE overrides; other sections are kept): throughput off
# and on and the gain; the mean batch size from Tollgate's tollgate_batch_size histogram and the
# simulator's ideal gain at it and at MAX_BATCH; gain ÷ ideal; p50 and p99 off and on and the added
# p50 against max_queue_delay_us; and whether the goals are met (gain ≥ 8× at max batch 16 and ≥ 90%
# of the ideal gain at the achieved batch size; added p50 ≤ max_queue_delay_us). After each loaded
# run the same Tollgate takes a light load (LIGHT_CONCURRENCY connections), where batches rarely
# fill: its added p50 shows what max_queue_delay_us costs when batching cannot help.
#
# Inputs (environment): BUILD_DIR (default build; holds sim/tollgate-sim and proxy/tollgate),
# CONCURRENCY (default 64), LIGHT_CONCURRENCY (default 1), DURATION_S (default 10), WARMUP_S (default 1), MAX_BATCH (default 16),
# QUEUE_DELAY_US (default 2000), MAX_IN_FLIGHT (default 2: the simulator runs one call at a time; 0 =
# no bound), TIME_SCALE (default 0.05: one 16-token call alone takes a few ms),
# PER_ITEM_FRACTION (default 0.02, the simulator's f), RESULTS_FILE. Installs wrk (Debian package)
# when missing. Every process it starts is stopped on exit; every run is bounded by `timeout`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=bench/common.sh
source "${SCRIPT_DIR}/common.sh"
CONCURRENCY="${CONCURRENCY:-64}"
LIGHT_CONCURRENCY="${LIGHT_CONCURRENCY:-1}"
MAX_BATCH="${MAX_BATCH:-16}"
QUEUE_DELAY_US="${QUEUE_DELAY_US:-2000}"
MAX_IN_FLIGHT="${MAX_IN_FLIGHT:-2}"
TIME_SCALE="${TIME_SCALE:-0.05}"
PER_ITEM_FRACTION="${PER_ITEM_FRACTION:-0.02}"
readonly MAX_TOKENS=16
readonly API_KEY="tollgate-bench-batching-key"
readonly COMMAND_LINE="BUILD_DIR=${BUILD_DIR} CONCURRENCY=${CONCURRENCY} \
LIGHT_CONCURRENCY=${LIGHT_CONCURRENCY} DURATION_S=${DURATION_S} \
WARMUP_S=${WARMUP_S} MAX_BATCH=${MAX_BATCH} QUEUE_DELAY_US=${QUEUE_DELAY_US} MAX_IN_FLIGHT=${MAX_IN_FLIGHT} \
TIME_SCALE=${TIME_SCALE} PER_ITEM_FRACTION=${PER_ITEM_FRACTION} bench/batching.sh"
resolve_build_dir

require_binaries "${BUILD_DIR}/sim/tollgate-sim" "${BUILD_DIR}/proxy/tollgate"
require_seconds DURATION_S "${DURATION_S}"
require_seconds WARMUP_S "${WARMUP_S}"
require_seconds TIME_SCALE "${TIME_SCALE}"
require_seconds PER_ITEM_FRACTION "${PER_ITEM_FRACTION}"
require_positive_integers "CONCURRENCY, LIGHT_CONCURRENCY, MAX_BATCH and QUEUE_DELAY_US" \
  "${CONCURRENCY}" "${LIGHT_CONCURRENCY}" "${MAX_BATCH}" "${QUEUE_DELAY_US}"
require_wrk

# Other work on the machine skews the figures; the report says how busy it was.
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
bench_init

# --- the simulator: static batches, one call at a time ------------------------------------------
start_http_sim --batch_mode=static --max_static_batch "${MAX_BATCH}" \
  --static_per_item_fraction "${PER_ITEM_FRACTION}" --time_scale "${TIME_SCALE}"

# write_config FILE ENABLED: Tollgate in front of the simulator, batching ENABLED (true/false).
write_config() {
  write_http_config "$1" "batching: {enabled: $2, max_batch_size: ${MAX_BATCH}, max_queue_delay_us: ${QUEUE_DELAY_US},
    max_in_flight_batches: ${MAX_IN_FLIGHT}}"
}

# Distinct prompts of one length (so every item of a call takes the same t_1), sampled (so that
# nothing could answer a repeat from a cache); TAG keeps runs apart.
WRK_TEMPLATE="${WORK_DIR}/completion.lua"
wrk_post_script /v1/completions "string.format('{\"model\":\"llama-3-8b\",\"max_tokens\":${MAX_TOKENS},' ..
    '\"temperature\":0.7,\"prompt\":\"Batching benchmark TAG prompt number %09d\"}', n)" \
  >"${WRK_TEMPLATE}"

# batch_stats: "batches prompts queue_delay_s_sum queue_delay_count" of Tollgate's batch series.
batch_stats() {
  curl -fs "http://${METRICS_ADDRESS}/metrics" | awk '
    /^tollgate_batch_size_count/ { b += $NF } /^tollgate_batch_size_sum/ { p += $NF }
    /^tollgate_batch_queue_delay_seconds_sum/ { d += $NF }
    /^tollgate_batch_queue_delay_seconds_count/ { n += $NF }
    END { printf "%d %d %.9f %d\n", b, p, d, n }'
}

# --- t_1: one call alone, straight to the simulator ----------------------------------------------
echo "one client straight to tollgate-sim (static mode, time_scale ${TIME_SCALE})..."
read -r SOLO_RATE SOLO_P50 _ _ SOLO_ERRORS <<<"$(run_wrk solo "${SIM_HTTP}" 1 2)"
echo "  ${SOLO_RATE} requests/s, p50 ${SOLO_P50} µs, errors ${SOLO_ERRORS}"

# --- the same load through Tollgate, batching off then on --------------------------------------
declare -A RATE P50 P99 REQUESTS ERRORS BATCHES PROMPTS DELAY_S DELAY_N
# measure RUN CONNECTIONS: one measured run through TOLLGATE_HTTP, its figures kept under RUN.
measure() {
  local run="$1" b0 p0 d0 n0 b1 p1 d1 n1
  read -r b0 p0 d0 n0 <<<"$(batch_stats)"
  read -r "RATE[${run}]" "P50[${run}]" "P99[${run}]" "REQUESTS[${run}]" "ERRORS[${run}]" \
    <<<"$(run_wrk "${run}" "${TOLLGATE_HTTP}" "$2" "${DURATION_S}")"
  read -r b1 p1 d1 n1 <<<"$(batch_stats)"
  BATCHES[${run}]=$((b1 - b0))
  PROMPTS[${run}]=$((p1 - p0))
  DELAY_S[${run}]="$(awk -v a="${d1}" -v b="${d0}" 'BEGIN { printf "%.9f", a - b }')"
  DELAY_N[${run}]=$((n1 - n0))
  echo "  ${RATE[${run}]} requests/s, p50 ${P50[${run}]} µs, p99 ${P99[${run}]} µs," \
    "errors ${ERRORS[${run}]}, batches ${BATCHES[${run}]} of ${PROMPTS[${run}]} prompts"
}
for mode in off on; do
  enabled=false
  [[ "${mode}" == on ]] && enabled=true
  write_config "${WORK_DIR}/tollgate-${mode}.yaml" "${enabled}"
  start_tollgate "${WORK_DIR}/tollgate-${mode}.yaml"
  TOLLGATE_HTTP="$(sed -E 's/.*http=([^ ]+).*/\1/' <<<"${TOLLGATE_LINE}")"
  echo "batching ${mode}: warm-up ${WARMUP_S} s, then ${DURATION_S} s at ${CONCURRENCY} connections..."
  read -r _ _ _ _ warm_errors <<<"$(run_wrk "warm-${mode}" "${TOLLGATE_HTTP}" "${CONCURRENCY}" "${WARMUP_S}")"
  ((warm_errors == 0)) || echo "  warm-up errors: ${warm_errors} ($(grep -m3 -i error "${WORK_DIR}/tollgate.err" || true))"
  measure "${mode}" "${CONCURRENCY}"
  # Light load, where a batch rarely fills and a request may wait the whole max_queue_delay_us.
  echo "batching ${mode}: ${DURATION_S} s at ${LIGHT_CONCURRENCY} connections..."
  measure "${mode}-light" "${LIGHT_CONCURRENCY}"
  stop_tollgate
done

# --- figures and goals ----------------------------------------------------------------------------
# shellcheck disable=SC2154  # awk variables
FIGURES="$(awk -v off="${RATE[off]}" -v on="${RATE[on]}" -v b="${BATCHES[on]}" \
  -v p="${PROMPTS[on]}" -v f="${PER_ITEM_FRACTION}" -v max="${MAX_BATCH}" \
  -v p50off="${P50[off]}" -v p50on="${P50[on]}" -v delay_us="${QUEUE_DELAY_US}" \
  -v light_off="${P50[off-light]}" -v light_on="${P50[on-light]}" 'BEGIN {
    gain = off > 0 ? on / off : 0
    mean = b > 0 ? p / b : 1
    ideal = mean / (1 + f * (mean - 1)); ideal_max = max / (1 + f * (max - 1))
    added = p50on - p50off
    printf "gain=%.2f mean_batch=%.2f ideal=%.2f ideal_max=%.2f of_ideal=%.1f of_ideal_max=%.1f",
      gain, mean, ideal, ideal_max, 100 * gain / ideal, 100 * gain / ideal_max
    light_added = light_on - light_off
    printf " added_p50_us=%.0f light_added_p50_us=%.0f", added, light_added
    printf " gain_goal=%s ideal_goal=%s latency_goal=%s", (gain >= 8 ? "met" : "missed"),
      (gain >= 0.9 * ideal ? "met" : "missed"), (added <= delay_us ? "met" : "missed")
    printf " light_latency_goal=%s\n", (light_added <= delay_us ? "within" : "beyond") }')"
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }

section="${WORK_DIR}/section.md"
{
  section_preamble batching "Dynamic batching (issue 7)"
  echo
  echo "\`tollgate-sim --batch_mode=static --max_static_batch ${MAX_BATCH}" \
    "--static_per_item_fraction ${PER_ITEM_FRACTION} --time_scale ${TIME_SCALE}\` runs one call at"
  echo "a time; a call of B prompts takes t_1 × (1 + f × (B − 1)), so the ideal gain of batching B"
  echo "prompts is B / (1 + f × (B − 1)). One client straight to its HTTP API: t_1 = p50"
  echo "$(awk -v v="${SOLO_P50}" 'BEGIN { printf "%.2f", v / 1000 }') ms (${SOLO_RATE} requests/s," \
    "${SOLO_ERRORS} errors). Through Tollgate's HTTP ingress and \`openai\` backend: wrk closed loop,"
  echo "one thread, ${CONCURRENCY} connections, each sending its next \`/v1/completions\` prompt request"
  echo "(distinct prompts of one length, max_tokens ${MAX_TOKENS}, temperature 0.7, no response cache)"
  echo "when the previous one is answered; ${DURATION_S} s measured after ${WARMUP_S} s of warm-up, on a"
  echo "fresh Tollgate with \`backends[].batching: {enabled: false}\`, then \`{enabled: true,"
  echo "max_batch_size: ${MAX_BATCH}, max_queue_delay_us: ${QUEUE_DELAY_US}, max_in_flight_batches: ${MAX_IN_FLIGHT}}\`."
  echo "Batch figures come from"
  echo "Tollgate's \`tollgate_batch_size\` and \`tollgate_batch_queue_delay_seconds\` over each measured"
  echo "run. After the ${CONCURRENCY}-connection run, the same Tollgate takes a light load, ${LIGHT_CONCURRENCY}"
  echo "connection(s) for ${DURATION_S} s, where a batch rarely fills and a request may wait up to"
  echo "max_queue_delay_us for company: the latency batching costs when it cannot help."
  echo
  echo "| connections | batching | requests/s | p50 ms | p99 ms | requests | errors | batched backend calls | mean batch size | mean queue wait ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for mode in off on off-light on-light; do
    connections="${CONCURRENCY}"
    [[ "${mode}" == *-light ]] && connections="${LIGHT_CONCURRENCY}"
    awk -v c="${connections}" -v m="${mode%-light}" -v ds="${DELAY_S[${mode}]}" \
      -v dn="${DELAY_N[${mode}]}" -v r="${RATE[${mode}]}" -v a="${P50[${mode}]}" -v z="${P99[${mode}]}" \
      -v n="${REQUESTS[${mode}]}" -v e="${ERRORS[${mode}]}" -v b="${BATCHES[${mode}]}" \
      -v p="${PROMPTS[${mode}]}" 'BEGIN {
        printf "| %s | %s | %.0f | %.2f | %.2f | %d | %d | %d | %s | %s |\n", c, m, r, a / 1000,
          z / 1000, n, e, b, (b > 0 ? sprintf("%.2f", p / b) : "–"),
          (dn > 0 ? sprintf("%.2f", ds * 1000 / dn) : "–") }'
  done
  echo
  echo "| figure | value | goal |"
  echo "|---|---|---|"
  echo "| throughput gain (on ÷ off) | $(fig gain)× | ≥ 8× at max batch ${MAX_BATCH}: $(fig gain_goal) |"
  echo "| ideal gain at the mean batch size $(fig mean_batch) | $(fig ideal)× | |"
  echo "| ideal gain at ${MAX_BATCH} | $(fig ideal_max)× | |"
  echo "| gain ÷ ideal at the mean batch size | $(fig of_ideal)% | ≥ 90%: $(fig ideal_goal) |"
  echo "| gain ÷ ideal at ${MAX_BATCH} | $(fig of_ideal_max)% | |"
  echo "| added p50 (on − off), ${CONCURRENCY} connections | $(ms "$(fig added_p50_us)") ms | ≤ max_queue_delay_us = $(ms "${QUEUE_DELAY_US}") ms: $(fig latency_goal) |"
  echo "| added p50 (on − off), ${LIGHT_CONCURRENCY} connections | $(ms "$(fig light_added_p50_us)") ms | $(fig light_latency_goal) max_queue_delay_us (informational) |"
  echo
  echo "Why max_in_flight_batches (${MAX_IN_FLIGHT} here): the clients of one batch send their next requests"
  echo "together when it is answered, so they queue as a group. Without a bound, a group split once"
  echo "(its stragglers miss the batch) stays split while max_queue_delay_us is shorter than a backend"
  echo "call (t_1 above): the parts come back a call apart and each goes alone when its delay runs out."
  echo "With the bound, the queue holds while that many calls run and sends full batches when one ends."
  echo "<!-- batching:end -->"
} >"${section}"

replace_section "${RESULTS_FILE}" batching "${section}"
cat "${section}"
echo "wrote ${RESULTS_FILE}"
