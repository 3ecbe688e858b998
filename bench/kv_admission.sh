#!/usr/bin/env bash
# Measures KV-aware admission (issue 7) against a backend whose KV cache the load overflows:
# tollgate-sim in continuous-batching mode (vLLM's scheduling, real time) with a KV cache of
# KV_BLOCKS blocks of 16 tokens. The sim admits a request when its prompt fits beside what runs,
# and when the running requests then grow past the cache it preempts the newest and recomputes it
# later (vllm:num_preemptions_total), as vLLM does.
#
#   BUILD_DIR=build CONCURRENCY=32 DURATION_S=20 bench/kv_admission.sh
#
# One simulator serves both runs. The same closed-loop load (wrk, CONCURRENCY connections, each
# sending its next /v1/completions request when the previous one is answered: distinct prompts of
# PROMPT_TOKENS/2 to 3×PROMPT_TOKENS/2 tokens, max_tokens MAX_TOKENS, temperature 0.7) goes through Tollgate's HTTP
# ingress and `openai` backend with backends[].kv.admission off, then on (admit_ratio 1), each on
# a fresh Tollgate after a WARMUP_S warm-up run, with the simulator drained in between. Tollgate is
# told the simulator's capacity (kv.capacity_bytes), so both sides size the cache alike.
#
# It prints, and writes to the "KV-aware admission" section of bench/RESULTS.md (RESULTS_FILE
# overrides; other sections are kept): per run, requests/s, output tokens/s (the simulator's
# vllm:generation_tokens_total), p50 and p99, errors, the simulator's preemptions and the peak
# depth of Tollgate's admission queue seen by a 10 Hz sampler; then whether the goals are met:
# with admission, preemptions 0 and throughput (requests/s) at least 95% of the run without.
#
# Inputs (environment): BUILD_DIR (default build; holds sim/tollgate-sim and proxy/tollgate),
# CONCURRENCY (default 32), DURATION_S (default 20), WARMUP_S (default 3), PROMPT_TOKENS (default
# 1024), MAX_TOKENS (default 64), KV_BLOCKS (default 1100: room for about 16 whole requests of
# the defaults, 68 blocks each on average), TIME_SCALE (default 0.5), RESULTS_FILE. Installs wrk
# (Debian package) when missing. Every process it starts is stopped on exit; every run is bounded
# by `timeout`.
set -euo pipefail

# Longer than common.sh's defaults: a request here takes seconds.
DURATION_S="${DURATION_S:-20}"
WARMUP_S="${WARMUP_S:-3}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=bench/common.sh
source "${SCRIPT_DIR}/common.sh"
CONCURRENCY="${CONCURRENCY:-32}"
PROMPT_TOKENS="${PROMPT_TOKENS:-1024}"
MAX_TOKENS="${MAX_TOKENS:-64}"
KV_BLOCKS="${KV_BLOCKS:-1100}"
TIME_SCALE="${TIME_SCALE:-0.5}"
readonly BLOCK_TOKENS=16
readonly BYTES_PER_TOKEN=131072  # Llama-3-8B in bf16: 2 × 32 layers × 8 KV heads × 128 × 2 bytes
readonly API_KEY="tollgate-bench-kv-admission-key"
readonly COMMAND_LINE="BUILD_DIR=${BUILD_DIR} CONCURRENCY=${CONCURRENCY} DURATION_S=${DURATION_S} \
WARMUP_S=${WARMUP_S} PROMPT_TOKENS=${PROMPT_TOKENS} MAX_TOKENS=${MAX_TOKENS} \
KV_BLOCKS=${KV_BLOCKS} TIME_SCALE=${TIME_SCALE} bench/kv_admission.sh"
resolve_build_dir

require_binaries "${BUILD_DIR}/sim/tollgate-sim" "${BUILD_DIR}/proxy/tollgate"
require_seconds DURATION_S "${DURATION_S}"
require_seconds WARMUP_S "${WARMUP_S}"
require_seconds TIME_SCALE "${TIME_SCALE}"
require_positive_integers "CONCURRENCY, PROMPT_TOKENS, MAX_TOKENS and KV_BLOCKS" \
  "${CONCURRENCY}" "${PROMPT_TOKENS}" "${MAX_TOKENS}" "${KV_BLOCKS}"
((PROMPT_TOKENS >= 8)) || die "PROMPT_TOKENS must be at least 8, got ${PROMPT_TOKENS}"
require_wrk
readonly KV_BYTES=$((KV_BLOCKS * BLOCK_TOKENS * BYTES_PER_TOKEN))
# A request at its end: prompt + max_tokens in whole blocks (what admission projects), for the
# shortest, the mean and the longest prompt sent.
readonly MIN_PROMPT=$((PROMPT_TOKENS / 2)) MAX_PROMPT=$((PROMPT_TOKENS / 2 + PROMPT_TOKENS - 1))
blocks_of() { echo $((($1 + MAX_TOKENS + BLOCK_TOKENS - 1) / BLOCK_TOKENS)); }
MIN_BLOCKS="$(blocks_of "${MIN_PROMPT}")"
MEAN_BLOCKS="$(blocks_of "${PROMPT_TOKENS}")"
MAX_BLOCKS="$(blocks_of "${MAX_PROMPT}")"
readonly MIN_BLOCKS MEAN_BLOCKS MAX_BLOCKS

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
bench_init

# --- the simulator: continuous batching, a KV cache the load overflows --------------------------
start_http_sim --batch_mode=continuous --gpu a100-80gb --kv_capacity_bytes "${KV_BYTES}" \
  --time_scale "${TIME_SCALE}"

# sim_metric NAME: the value of the simulator's series NAME (summed over its labels).
sim_metric() { metric_sum "^$1[ {]" "${SIM_HTTP}"; }

# drain_sim: waits (up to 60 s) until the simulator runs and queues nothing.
drain_sim() {
  for _ in $(seq 600); do
    (($(sim_metric vllm:num_requests_running) + $(sim_metric vllm:num_requests_waiting) == 0)) &&
      return
    sleep 0.1
  done
  die "tollgate-sim did not drain in 60 s"
}

# write_config FILE ENABLED: Tollgate in front of the simulator, KV admission ENABLED (true/false).
write_config() {
  write_http_config "$1" "retry: {max_attempts: 1}, kv: {gpu: a100-80gb, capacity_bytes: ${KV_BYTES},
    admission: {enabled: $2, admit_ratio: 1, max_queue: 1024, max_queue_wait_ms: 60000}}"
}

# Distinct prompts whose lengths spread evenly over PROMPT_TOKENS/2 to 3×PROMPT_TOKENS/2 tokens as
# both sides count them (4 bytes each: Tollgate's `estimate` and the simulator agree), so that
# every projection is exact. The spread keeps requests from moving in lockstep: clients that start
# together would otherwise all end together, and the cache would fill and empty as one. TAG keeps
# runs apart.
WRK_TEMPLATE="${WORK_DIR}/completion.lua"
wrk_post_script /v1/completions "string.format('{\"model\":\"llama-3-8b\",\"max_tokens\":${MAX_TOKENS},' ..
    '\"temperature\":0.7,\"prompt\":\"TAG prompt %09d ' ..
    string.rep('x', 4 * (math.floor(${PROMPT_TOKENS} / 2) + (n * 7919) % ${PROMPT_TOKENS}) - 18 - #'TAG') .. '\"}', n)" \
  >"${WRK_TEMPLATE}"

# sample_queue_depth OUT: writes the peak of tollgate_kv_admission_queue_depth, read every 0.1 s
# until killed, to OUT.
sample_queue_depth() {
  local peak=0 depth
  trap 'echo "${peak}" >"$1"; exit 0' TERM
  while true; do
    depth="$(metric_sum '^tollgate_kv_admission_queue_depth' || echo 0)"
    ((${depth:-0} > peak)) && peak="${depth}"
    echo "${peak}" >"$1"
    sleep 0.1
  done
}

declare -A RATE P50 P99 REQUESTS ERRORS PREEMPTIONS TOKENS QUEUE_PEAK
for mode in off on; do
  enabled=false
  [[ "${mode}" == on ]] && enabled=true
  write_config "${WORK_DIR}/tollgate-${mode}.yaml" "${enabled}"
  drain_sim
  start_tollgate "${WORK_DIR}/tollgate-${mode}.yaml"
  TOLLGATE_HTTP="$(sed -E 's/.*http=([^ ]+).*/\1/' <<<"${TOLLGATE_LINE}")"
  echo "admission ${mode}: warm-up ${WARMUP_S} s, then ${DURATION_S} s at ${CONCURRENCY} connections..."
  read -r _ _ _ _ warm_errors <<<"$(run_wrk "warm-${mode}" "${TOLLGATE_HTTP}" "${CONCURRENCY}" "${WARMUP_S}")"
  ((warm_errors == 0)) || echo "  warm-up errors: ${warm_errors}"
  preempted0="$(sim_metric vllm:num_preemptions_total)"
  tokens0="$(sim_metric vllm:generation_tokens_total)"
  sample_queue_depth "${WORK_DIR}/queue-${mode}" &
  sampler=$!
  STARTED_PIDS+=("${sampler}")
  read -r "RATE[${mode}]" "P50[${mode}]" "P99[${mode}]" "REQUESTS[${mode}]" "ERRORS[${mode}]" \
    <<<"$(run_wrk "${mode}" "${TOLLGATE_HTTP}" "${CONCURRENCY}" "${DURATION_S}")"
  kill -TERM "${sampler}" 2>/dev/null || true
  wait "${sampler}" 2>/dev/null || true
  QUEUE_PEAK[${mode}]="$(<"${WORK_DIR}/queue-${mode}")"
  # wrk's last requests are still running on the simulator: its counters are read once it drained,
  # so they cover what the measured run sent (and what its warm-up left running at its start).
  drain_sim
  PREEMPTIONS[${mode}]=$(($(sim_metric vllm:num_preemptions_total) - preempted0))
  TOKENS[${mode}]=$(($(sim_metric vllm:generation_tokens_total) - tokens0))
  echo "  ${RATE[${mode}]} requests/s, p50 ${P50[${mode}]} µs, p99 ${P99[${mode}]} µs," \
    "errors ${ERRORS[${mode}]}, preemptions ${PREEMPTIONS[${mode}]}," \
    "admission queue peak ${QUEUE_PEAK[${mode}]}"
  stop_tollgate
done

# --- figures and goals ----------------------------------------------------------------------------
FIGURES="$(awk -v off="${RATE[off]}" -v on="${RATE[on]}" -v p="${PREEMPTIONS[on]}" \
  -v e="$((ERRORS[off] + ERRORS[on]))" 'BEGIN {
    ratio = off > 0 ? 100 * on / off : 0
    printf "ratio=%.1f throughput_goal=%s preemption_goal=%s errors_goal=%s\n", ratio,
      (ratio >= 95 ? "met" : "missed"), (p == 0 ? "met" : "missed"), (e == 0 ? "met" : "missed") }')"

section="${WORK_DIR}/section.md"
{
  section_preamble kv_admission "KV-aware admission (issue 7)"
  echo
  echo "\`tollgate-sim --batch_mode=continuous --gpu a100-80gb --kv_capacity_bytes ${KV_BYTES}" \
    "--time_scale ${TIME_SCALE}\`: Llama-3-8B (${BYTES_PER_TOKEN} bytes per token) with a KV cache"
  echo "of ${KV_BLOCKS} blocks of ${BLOCK_TOKENS} tokens. Prompts of ${MIN_PROMPT} to ${MAX_PROMPT} tokens" \
    "(${PROMPT_TOKENS} on average) and max_tokens ${MAX_TOKENS}"
  echo "end at ${MIN_BLOCKS} to ${MAX_BLOCKS} blocks (${MEAN_BLOCKS} on average: about" \
    "$((KV_BLOCKS / MEAN_BLOCKS)) fit at their end), while the simulator admits a request"
  echo "whenever its prompt fits beside what runs, and preempts when the running ones grow past the cache."
  echo "wrk closed loop, one thread, ${CONCURRENCY} connections, through Tollgate's HTTP ingress and \`openai\`"
  echo "backend (kv.capacity_bytes ${KV_BYTES}), ${DURATION_S} s measured after ${WARMUP_S} s of warm-up, on a"
  echo "fresh Tollgate with \`kv.admission: {enabled: false}\`, then \`{enabled: true, admit_ratio: 1}\`."
  echo "Preemptions and output tokens are the simulator's counters over the measured run (read once it"
  echo "drained); the queue peak is Tollgate's \`tollgate_kv_admission_queue_depth\` sampled at 10 Hz."
  echo
  echo "| admission | requests/s | output tokens/s | p50 ms | p99 ms | requests | errors | sim preemptions | admission queue peak |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for mode in off on; do
    awk -v m="${mode}" -v r="${RATE[${mode}]}" -v t="${TOKENS[${mode}]}" -v d="${DURATION_S}" \
      -v a="${P50[${mode}]}" -v z="${P99[${mode}]}" -v n="${REQUESTS[${mode}]}" \
      -v e="${ERRORS[${mode}]}" -v p="${PREEMPTIONS[${mode}]}" -v q="${QUEUE_PEAK[${mode}]}" \
      'BEGIN { printf "| %s | %.1f | %.0f | %.0f | %.0f | %d | %d | %d | %d |\n", m, r, t / d,
                      a / 1000, z / 1000, n, e, p, q }'
  done
  echo
  echo "| figure | value | goal |"
  echo "|---|---|---|"
  echo "| preemptions with admission | ${PREEMPTIONS[on]} | 0: $(fig preemption_goal) |"
  echo "| requests/s with ÷ without admission | $(fig ratio)% | ≥ 95%: $(fig throughput_goal) |"
  echo "| errors, both runs | $((ERRORS[off] + ERRORS[on])) | 0: $(fig errors_goal) |"
  echo
  echo "Why admission need not cost throughput here: its projection (prompt + max_tokens) is what a"
  echo "request really reaches when it uses its max_tokens, as most do here, and a preempted request"
  echo "pays its whole prefill again, which stalls every running request's next step. Where max_tokens"
  echo "is far above what requests use, the projection holds room that stays empty; admit_ratio above 1"
  echo "trades that for some preemption."
  echo "<!-- kv_admission:end -->"
} >"${section}"

replace_section "${RESULTS_FILE}" kv_admission "${section}"
cat "${section}"
echo "wrote ${RESULTS_FILE}"
