# shellcheck shell=bash disable=SC2034  # the variables set here are for the sourcing script
# Helpers of the bench scripts (overhead.sh, http_overhead.sh, cache_overhead.sh, batching.sh,
# kv_admission.sh); sourced, never run. They start tollgate-sim and Tollgate on free loopback ports,
# stop what was started, run tollgate-bench or wrk and read their figures, read CPU time from /proc
# and series from /metrics, describe the machine and the build, and replace one script's section of
# bench/RESULTS.md.
#
#   source "${SCRIPT_DIR}/common.sh"    # REPO_DIR; defaults of the common settings
#   ... settings, COMMAND_LINE ...
#   resolve_build_dir
#   bench_init                      # WORK_DIR, STARTED_PIDS, the exit trap
#   start_sim --time_scale 0        # SIM_PID, SIM_ADDRESS (start_http_sim: and SIM_HTTP)
#   start_tollgate "${WORK_DIR}/tollgate.yaml"   # TOLLGATE_PID, TOLLGATE_ADDRESS, METRICS_ADDRESS
#
# Settings (environment) every script takes: BUILD_DIR (default build; relative to the repository
# root), DURATION_S (default 10, measured seconds per run), WARMUP_S (default 1), RESULTS_FILE
# (default bench/RESULTS.md). run_bench also reads API_KEY, which the script sets.

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_DIR
# Models named like llama-3 count tokens with their tokenizer: scripts/fetch_vocab's vocabularies.
export TOLLGATE_VOCAB_DIR="${TOLLGATE_VOCAB_DIR:-${REPO_DIR}/.cache/tokenizer}"
BUILD_DIR="${BUILD_DIR:-build}"
DURATION_S="${DURATION_S:-10}"
WARMUP_S="${WARMUP_S:-1}"
RESULTS_FILE="${RESULTS_FILE:-${REPO_DIR}/bench/RESULTS.md}"
readonly STARTUP_TIMEOUT_S=15

# resolve_build_dir: a relative BUILD_DIR is taken from the repository root, as in the examples.
resolve_build_dir() {
  [[ "${BUILD_DIR}" = /* ]] || BUILD_DIR="${REPO_DIR}/${BUILD_DIR}"
}

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# require_binaries PATH...: dies naming the ninja target of the first missing one.
require_binaries() {
  local binary
  for binary in "$@"; do
    [[ -x "${binary}" ]] || die "missing ${binary} (build it: ninja -C ${BUILD_DIR} $(basename "${binary}"))"
  done
}

# require_seconds NAME VALUE / require_positive_integers WHAT VALUE...: dies on a bad setting.
require_seconds() {
  [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$1 must be a number of seconds"
}
require_positive_integers() {
  local what="$1" value
  shift
  for value in "$@"; do
    [[ "${value}" =~ ^[0-9]+$ && "${value}" -gt 0 ]] || die "${what} must be positive integers: ${value}"
  done
}

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

# bench_init: a work directory removed on exit, with every process started by this script.
bench_init() {
  WORK_DIR="$(mktemp -d -t "tollgate-$(basename "$0" .sh).XXXXXX")"
  STARTED_PIDS=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

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

# start_sim ARGS...: tollgate-sim on a free loopback port with ARGS; sets SIM_PID, SIM_ADDRESS.
start_sim() {
  "${BUILD_DIR}/sim/tollgate-sim" --address 127.0.0.1:0 "$@" >"${WORK_DIR}/sim.out" \
    2>"${WORK_DIR}/sim.err" &
  SIM_PID=$!
  STARTED_PIDS+=("${SIM_PID}")
  local line
  line="$(wait_for_line "${WORK_DIR}/sim.out" '^tollgate-sim listening on ' "${SIM_PID}")" ||
    die "tollgate-sim did not start: $(tail -n 5 "${WORK_DIR}/sim.err")"
  SIM_ADDRESS="${line##* }"
}

# write_http_config FILE BACKEND_FIELDS: a Tollgate config on free loopback ports (gRPC, metrics,
# HTTP) for tenant "bench" (API_KEY), with one `openai` backend "sim" in front of SIM_HTTP (its
# further fields BACKEND_FIELDS, YAML flow-map entries) serving model llama-3-8b, counted by
# estimate (4 bytes a token, as the simulator counts) at $0.2 per million tokens.
write_http_config() {
  cat >"$1" <<YAML
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants: [{name: bench, api_key_sha256: ["$(printf %s "${API_KEY}" | sha256sum | cut -d' ' -f1)"]}]
backends:
  - {name: sim, kind: openai, base_url: "http://${SIM_HTTP}", $2}
models:
  - {name: llama-3-8b, backend: sim, tokenizer: estimate,
     prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}}
YAML
}

# start_http_sim ARGS...: start_sim with its HTTP API on a free loopback port too; also sets
# SIM_HTTP (host:port of the HTTP API).
start_http_sim() {
  start_sim --http_address 127.0.0.1:0 "$@"
  SIM_HTTP="$(wait_for_line "${WORK_DIR}/sim.out" '^tollgate-sim http listening on ' "${SIM_PID}" |
    awk '{print $NF}')" || die "tollgate-sim did not start: $(tail -n 5 "${WORK_DIR}/sim.err")"
  [[ -n "${SIM_HTTP}" ]] || die "tollgate-sim did not start: $(tail -n 5 "${WORK_DIR}/sim.err")"
}

# start_tollgate CONFIG: Tollgate with CONFIG (which listens on port 0); sets TOLLGATE_PID,
# TOLLGATE_LINE (its "tollgate listening" line), TOLLGATE_ADDRESS (gRPC) and METRICS_ADDRESS.
start_tollgate() {
  "${BUILD_DIR}/proxy/tollgate" --config "$1" >"${WORK_DIR}/tollgate.out" \
    2>"${WORK_DIR}/tollgate.err" &
  TOLLGATE_PID=$!
  STARTED_PIDS+=("${TOLLGATE_PID}")
  TOLLGATE_LINE="$(wait_for_line "${WORK_DIR}/tollgate.out" '^tollgate listening grpc=' \
    "${TOLLGATE_PID}")" || die "tollgate did not start: $(tail -n 5 "${WORK_DIR}/tollgate.err")"
  TOLLGATE_ADDRESS="$(sed -E 's/.*grpc=([^ ]+).*/\1/' <<<"${TOLLGATE_LINE}")"
  METRICS_ADDRESS="$(sed -E 's/.*metrics=([^ ]+).*/\1/' <<<"${TOLLGATE_LINE}")"
}

# stop_tollgate: stops the Tollgate started last (SIGTERM, then SIGKILL after 10 s).
stop_tollgate() {
  kill "${TOLLGATE_PID}" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "${TOLLGATE_PID}" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "${TOLLGATE_PID}" 2>/dev/null || true
  wait "${TOLLGATE_PID}" 2>/dev/null || true
}

# run_wrk TAG ADDRESS CONNECTIONS SECONDS: one closed-loop wrk run (one thread) of the Lua script
# WRK_TEMPLATE (wrk_post_script's output, its "TAG" replaced by TAG so that runs send different
# bodies) against http://ADDRESS. Prints "requests_per_s p50_us p99_us requests errors", errors
# being non-2xx responses plus socket errors. Requests wait up to 30 s for their answer.
run_wrk() {
  sed "s/TAG/$1/" "${WRK_TEMPLATE}" >"${WORK_DIR}/$1.lua"
  timeout "$(awk -v d="$4" 'BEGIN { printf "%d", d + 60 }')" wrk -t1 -c"$3" -d"$4s" --latency \
    --timeout 30s -s "${WORK_DIR}/$1.lua" "http://$2" >"${WORK_DIR}/$1.wrk" 2>&1 &
  local wrk_pid=$!
  STARTED_PIDS+=("${wrk_pid}")
  wait "${wrk_pid}" || die "wrk $1 failed: $(tail -n 5 "${WORK_DIR}/$1.wrk")"
  local out rate p50 p99 requests non2xx socket
  out="$(<"${WORK_DIR}/$1.wrk")"
  rate="$(awk '/^Requests\/sec:/ { print $2 }' <<<"${out}")"
  p50="$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"${out}")")"
  p99="$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"${out}")")"
  requests="$(awk '/requests in/ { print $1 }' <<<"${out}")"
  non2xx="$(awk '/Non-2xx or 3xx responses/ { print $NF }' <<<"${out}")"
  socket="$(awk -F'[ ,]+' '/Socket errors/ { print $4 + $6 + $8 + $10 }' <<<"${out}")"
  echo "${rate} ${p50} ${p99} ${requests} $((${non2xx:-0} + ${socket:-0}))"
}

# require_wrk: installs wrk (Debian package) when missing.
require_wrk() {
  command -v wrk >/dev/null && return
  echo "installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || die "cannot install wrk"
}

CLOCK_TICKS_PER_S="$(getconf CLK_TCK)"
readonly CLOCK_TICKS_PER_S

# utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat; the command name in
# field 2 may hold spaces, so count from after its closing parenthesis).
cpu_ticks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# per_request TICKS REQUESTS: CPU-µs per request.
per_request() {
  awk -v t="$1" -v hz="${CLOCK_TICKS_PER_S}" -v n="$2" \
    'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "n/a" }'
}

# metric_sum PATTERN [ADDRESS]: the sum of the values of the series whose line matches the awk
# regex PATTERN, e.g. '^tollgate_cache_requests_total\{.*result="hit"', on the /metrics of ADDRESS
# (default METRICS_ADDRESS, Tollgate's).
metric_sum() {
  curl -fs "http://${2:-${METRICS_ADDRESS}}/metrics" |
    awk -v p="$1" '$0 ~ p { s += $NF } END { printf "%d\n", s }'
}

# wrk_post_script PATH BODY: prints a wrk Lua script that POSTs JSON to PATH with API_KEY as bearer
# token; BODY is a Lua expression of n, the request's number in its wrk thread.
wrk_post_script() {
  cat <<LUA
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${API_KEY}"
request = function()
  n = n + 1
  wrk.body = $2
  return wrk.format(nil, "$1")
end
LUA
}

# to_us VALUE: wrk's "635.91us" / "1.20ms" / "2.01s" in µs.
to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                         else if (v ~ /s$/) print n * 1e6; else print n }'
}

# field LINE KEY: the value of KEY=value in a RESULT line.
field() {
  sed -nE "s/.*[ ]$2=([^ ]+).*/\1/p" <<<"$1"
}

# requests_in RESULT_LINE: every request a run completed, warm-up included.
requests_in() {
  echo $(($(field "$1" ok) + $(field "$1" errors) + $(field "$1" warmup)))
}

# run_bench NAME TARGET MODE RATE [FLAGS...]: runs tollgate-bench open loop with API_KEY, keeping
# its output in WORK_DIR/NAME.out. In the background, so that a signal to this script is handled
# at once.
run_bench() {
  local name="$1" target="$2" mode="$3" rate="$4"
  shift 4
  local limit_s bench_pid
  limit_s="$(awk -v d="${DURATION_S}" -v w="${WARMUP_S}" 'BEGIN { printf "%d", d + w + 60 }')"
  timeout "${limit_s}" "${BUILD_DIR}/bench/tollgate-bench" --target "${target}" \
    --api_key "${API_KEY}" --mode "${mode}" --rate "${rate}" --duration_s "${DURATION_S}" \
    --warmup_s "${WARMUP_S}" --deadline_ms 10000 "$@" >"${WORK_DIR}/${name}.out" 2>&1 &
  bench_pid=$!
  STARTED_PIDS+=("${bench_pid}")
  wait "${bench_pid}" || die "tollgate-bench ${name} failed: $(tail -n 5 "${WORK_DIR}/${name}.out")"
}

# result_line NAME: the RESULT line of run NAME.
result_line() {
  grep -m1 '^RESULT ' "${WORK_DIR}/$1.out" || die "no RESULT line from $1"
}

# fig KEY: the value of KEY=value in FIGURES, a script's line of computed figures.
fig() { sed -nE "s/.*(^| )$1=([^ ]+).*/\2/p" <<<"${FIGURES}"; }

# section_preamble NAME TITLE: the head of a script's RESULTS.md section: its begin marker (ended by
# "<!-- NAME:end -->"), "## TITLE", the date, COMMAND_LINE, describe_build's lines and the load
# average from LOAD_BEFORE (read before the runs) to now.
section_preamble() {
  local script
  script="bench/$(basename "$0")"
  echo "<!-- $1:begin (written by ${script}) -->"
  echo "## $2"
  echo
  echo "Written by \`${script}\`; do not edit by hand."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Command: \`${COMMAND_LINE}\`"
  describe_build
  echo "- Load average (1, 5, 15 min): ${LOAD_BEFORE} before the runs," \
    "$(cut -d' ' -f1-3 /proc/loadavg) after; every process of a measurement shares the machine's" \
    "CPUs with whatever else runs there"
}

# describe_build: "- Machine", "- Build" and "- Source" lines for a report (Markdown list items).
describe_build() {
  local build_type tollgate_compile compile_flags compiler compiler_version revision cpu_model memory
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
  echo "- Machine: $(nproc) CPUs (${cpu_model:-unknown CPU}), ${memory} memory, Linux $(uname -r)"
  echo "- Build: CMAKE_BUILD_TYPE=${build_type:-unset (the project default)}, tollgate compiled" \
    "with \`${compile_flags:-unknown flags}\` by ${compiler_version:-an unknown compiler}"
  echo "- Source: revision ${revision}"
}

# replace_section FILE NAME SECTION: puts the file SECTION (which starts with a line
# `<!-- NAME:begin ...` and ends with `<!-- NAME:end -->`) in place of FILE's section NAME, or
# appends it after a blank line. Everything else in FILE stays as it was.
replace_section() {
  local file="$1" name="$2" section="$3"
  if grep -q "<!-- ${name}:begin" "${file}" 2>/dev/null; then
    awk -v f="${section}" -v begin="<!-- ${name}:begin" -v end="<!-- ${name}:end -->" '
      index($0, begin) == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
      index($0, end) == 1 { skip = 0; next }
      !skip' "${file}" >"${WORK_DIR}/replaced.md"
    cp "${WORK_DIR}/replaced.md" "${file}"
  else
    { echo; cat "${section}"; } >>"${file}"
  fi
}
