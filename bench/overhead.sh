#!/usr/bin/env bash
# Measures what Tollgate adds to a request: latency (proxied minus direct, at p50 and p99) and
# Tollgate's own CPU time per request, against tollgate-sim answering instantly (--time_scale 0).
#
#   BUILD_DIR=build RATES="200 1000 2000" DURATION_S=10 bench/overhead.sh
#
# For each rate it runs tollgate-bench open loop, unary, first straight at the simulator and then
# through Tollgate, back to back; then one streaming pair. It prints a table and writes it, with
# the command and a description of the machine, to bench/RESULTS.md (RESULTS_FILE overrides).
#
# Inputs (environment): BUILD_DIR (default build; holds sim/tollgate-sim, proxy/tollgate and
# bench/tollgate-bench), RATES (default "200 1000 2000", requests/s), DURATION_S (default 10,
# measured seconds per run), WARMUP_S (default 1), STREAM_RATE (default: the first rate),
# RESULTS_FILE. Every process it starts is stopped on exit; every run is bounded by `timeout`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"
# Models named like llama-3 count tokens with their tokenizer: scripts/fetch_vocab's vocabularies.
export TOLLGATE_VOCAB_DIR="${TOLLGATE_VOCAB_DIR:-${REPO_DIR}/.cache/tokenizer}"
readonly SCRIPT_DIR REPO_DIR
BUILD_DIR="${BUILD_DIR:-build}"
RATES="${RATES:-200 1000 2000}"
DURATION_S="${DURATION_S:-10}"
WARMUP_S="${WARMUP_S:-1}"
STREAM_RATE="${STREAM_RATE:-${RATES%% *}}"
RESULTS_FILE="${RESULTS_FILE:-${SCRIPT_DIR}/RESULTS.md}"
readonly API_KEY="tollgate-bench-overhead-key"
readonly STARTUP_TIMEOUT_S=15

readonly COMMAND_LINE="BUILD_DIR=${BUILD_DIR} RATES=\"${RATES}\" DURATION_S=${DURATION_S} \
WARMUP_S=${WARMUP_S} STREAM_RATE=${STREAM_RATE} bench/overhead.sh"

# A relative BUILD_DIR is taken from the repository root, as in the examples.
[[ "${BUILD_DIR}" = /* ]] || BUILD_DIR="${REPO_DIR}/${BUILD_DIR}"
readonly SIM="${BUILD_DIR}/sim/tollgate-sim"
readonly TOLLGATE="${BUILD_DIR}/proxy/tollgate"
readonly BENCH="${BUILD_DIR}/bench/tollgate-bench"

die() {
  echo "overhead.sh: $*" >&2
  exit 1
}

for binary in "${SIM}" "${TOLLGATE}" "${BENCH}"; do
  [[ -x "${binary}" ]] || die "missing ${binary} (build it: ninja -C ${BUILD_DIR} $(basename "${binary}"))"
done
[[ "${DURATION_S}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "DURATION_S must be a number of seconds"
[[ "${WARMUP_S}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "WARMUP_S must be a number of seconds"
for rate in ${RATES} ${STREAM_RATE}; do
  [[ "${rate}" =~ ^[0-9]+$ && "${rate}" -gt 0 ]] || die "rates must be positive integers: ${rate}"
done

# Other work on the machine skews the figures; the report says how busy it was.
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
WORK_DIR="$(mktemp -d -t tollgate-overhead.XXXXXX)"
STARTED_PIDS=()
# Stops what this script started: SIGTERM, up to 10 s for a graceful exit, then SIGKILL.
cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do kill "${pid}" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for pid in "${STARTED_PIDS[@]}"; do kill -0 "${pid}" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${STARTED_PIDS[@]}"; do kill -KILL "${pid}" 2>/dev/null || true; done
  rm -rf "${WORK_DIR}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for_line FILE PATTERN PID: prints the first line of FILE matching PATTERN; fails when PID
# exits first or after STARTUP_TIMEOUT_S.
wait_for_line() {
  local file="$1" pattern="$2" pid="$3" line
  for _ in $(seq $((STARTUP_TIMEOUT_S * 10))); do
    line="$(grep -m1 -E "${pattern}" "${file}" 2>/dev/null || true)"
    if [[ -n "${line}" ]]; then
      echo "${line}"
      return 0
    fi
    kill -0 "${pid}" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- start the simulator and Tollgate in front of it -------------------------------------------
"${SIM}" --address 127.0.0.1:0 --time_scale 0 >"${WORK_DIR}/sim.out" 2>"${WORK_DIR}/sim.err" &
SIM_PID=$!
STARTED_PIDS+=("${SIM_PID}")
sim_line="$(wait_for_line "${WORK_DIR}/sim.out" '^tollgate-sim listening on ' "${SIM_PID}")" ||
  die "tollgate-sim did not start: $(tail -n 5 "${WORK_DIR}/sim.err")"
SIM_ADDRESS="${sim_line##* }"

API_KEY_SHA256="$(printf %s "${API_KEY}" | sha256sum | cut -d' ' -f1)"
cat >"${WORK_DIR}/tollgate.yaml" <<EOF
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0"}
tenants: [{name: bench, api_key_sha256: ["${API_KEY_SHA256}"]}]
backends: [{name: sim-remote, kind: grpc, address: "${SIM_ADDRESS}"}]
models: [{name: llama-3-8b, backend: sim-remote, prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}}]
EOF
"${TOLLGATE}" --config "${WORK_DIR}/tollgate.yaml" >"${WORK_DIR}/tollgate.out" \
  2>"${WORK_DIR}/tollgate.err" &
TOLLGATE_PID=$!
STARTED_PIDS+=("${TOLLGATE_PID}")
tollgate_line="$(wait_for_line "${WORK_DIR}/tollgate.out" '^tollgate listening grpc=' \
  "${TOLLGATE_PID}")" || die "tollgate did not start: $(tail -n 5 "${WORK_DIR}/tollgate.err")"
TOLLGATE_ADDRESS="$(sed -E 's/.*grpc=([^ ]+).*/\1/' <<<"${tollgate_line}")"
METRICS_ADDRESS="$(sed -E 's/.*metrics=([^ ]+).*/\1/' <<<"${tollgate_line}")"
echo "tollgate-sim at ${SIM_ADDRESS} (pid ${SIM_PID}); tollgate at ${TOLLGATE_ADDRESS} (pid ${TOLLGATE_PID})"

# --- measurement helpers ------------------------------------------------------------------------
CLOCK_TICKS_PER_S="$(getconf CLK_TCK)"
readonly CLOCK_TICKS_PER_S

# utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat; the command name in
# field 2 may hold spaces, so count from after its closing parenthesis).
cpu_ticks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# pipeline_seconds: "sum count" of tollgate_overhead_seconds (Tollgate's own time per request,
# backend and gRPC transport excluded), summed over models.
pipeline_seconds() {
  curl -fs "http://${METRICS_ADDRESS}/metrics" |
    awk '/^tollgate_overhead_seconds_sum/ { s += $2 } /^tollgate_overhead_seconds_count/ { c += $2 }
         END { printf "%.9f %d\n", s, c }'
}

# per_request TICKS REQUESTS: CPU-µs per request.
per_request() {
  awk -v t="$1" -v hz="${CLOCK_TICKS_PER_S}" -v n="$2" \
    'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }'
}

# requests_in RESULT_LINE: every request a run completed, warm-up included.
requests_in() {
  echo $(($(field "$1" ok) + $(field "$1" errors) + $(field "$1" warmup)))
}

# field LINE KEY: the value of KEY=value in a RESULT line.
field() {
  sed -nE "s/.*[ ]$2=([^ ]+).*/\1/p" <<<"$1"
}

# run_bench NAME TARGET MODE RATE: runs tollgate-bench, keeping its output in WORK_DIR/NAME.out.
# In the background, so that a signal to this script is handled at once.
run_bench() {
  local name="$1" target="$2" mode="$3" rate="$4"
  local limit_s bench_pid
  limit_s="$(awk -v d="${DURATION_S}" -v w="${WARMUP_S}" 'BEGIN { printf "%d", d + w + 60 }')"
  timeout "${limit_s}" "${BENCH}" --target "${target}" --api_key "${API_KEY}" \
    --mode "${mode}" --rate "${rate}" --duration_s "${DURATION_S}" --warmup_s "${WARMUP_S}" \
    --deadline_ms 10000 >"${WORK_DIR}/${name}.out" 2>&1 &
  bench_pid=$!
  STARTED_PIDS+=("${bench_pid}")
  wait "${bench_pid}" || die "tollgate-bench ${name} failed: $(tail -n 5 "${WORK_DIR}/${name}.out")"
}

# result_line NAME: the RESULT line of run NAME.
result_line() {
  grep -m1 '^RESULT ' "${WORK_DIR}/$1.out" || die "no RESULT line from $1"
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
build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "${BUILD_DIR}/CMakeCache.txt" 2>/dev/null || true)"
# How proxy/main.cc was compiled: the flags that decide speed, and the compiler.
tollgate_compile="$(grep -m1 -o '"command": "[^"]*proxy/main\.cc"' \
  "${BUILD_DIR}/compile_commands.json" 2>/dev/null || true)"
compile_flags="$(grep -oE -- ' (-O[0-9a-z]*|-g[0-9]*|-DNDEBUG|-march=[^ ]+|-flto[^ ]*)' \
  <<<"${tollgate_compile}" | tr -d '\n' | sed 's/^ //' || true)"
compiler="$(sed -E 's/^"command": "([^ ]+).*/\1/' <<<"${tollgate_compile}")"
compiler_version="$("${compiler:-c++}" --version 2>/dev/null | head -n 1 || true)"
revision="$(git -C "${REPO_DIR}" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "${REPO_DIR}" status --porcelain --untracked-files=no -- . ":!bench/RESULTS.md" 2>/dev/null)" ]]; then
  revision="${revision} with uncommitted changes in the working tree"
fi
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
memory="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"

{
  echo "# Tollgate overhead"
  echo
  echo "What Tollgate adds to a request in front of \`tollgate-sim --time_scale 0\` (answers at once),"
  echo "measured by \`bench/overhead.sh\` with \`tollgate-bench\` open loop (latency from the intended"
  echo "send time, so queueing is not hidden). Written by the script; do not edit by hand."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Command: \`${COMMAND_LINE}\`"
  echo "- Machine: $(nproc) CPUs (${cpu_model:-unknown CPU}), ${memory} memory, Linux $(uname -r)"
  echo "- Build: CMAKE_BUILD_TYPE=${build_type:-unset (the project default)}, tollgate compiled" \
    "with \`${compile_flags:-unknown flags}\` by ${compiler_version:-an unknown compiler}"
  echo "- Source: revision ${revision}"
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
  echo "request from its \\`tollgate_overhead_seconds\\` histogram: auth, routing, pricing and metrics,"
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
# Keep the HTTP path's section, which bench/http_overhead.sh writes.
if grep -q '<!-- http:begin' "${RESULTS_FILE}" 2>/dev/null; then
  { echo; sed -n '/<!-- http:begin/,/<!-- http:end -->/p' "${RESULTS_FILE}"; } >>"${WORK_DIR}/RESULTS.md"
fi
# So is everything after the HTTP section (the tokenizer figures, written by hand from
# tollgate-tokenizer-bench).
if grep -q '<!-- http:end -->' "${RESULTS_FILE}" 2>/dev/null; then
  sed -n '/<!-- http:end -->/,$p' "${RESULTS_FILE}" | tail -n +2 >>"${WORK_DIR}/RESULTS.md"
fi
cp "${WORK_DIR}/RESULTS.md" "${RESULTS_FILE}"
echo
echo "wrote ${RESULTS_FILE}"
