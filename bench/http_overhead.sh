#!/usr/bin/env bash
# Measures what Tollgate's HTTP path adds: an OpenAI-compatible /v1/chat/completions call made
# straight to tollgate-sim's HTTP API, and the same call through Tollgate's HTTP ingress and its
# `openai` backend, back to back at each concurrency, with wrk (closed loop).
#
#   BUILD_DIR=build CONCURRENCY="1 8 32" DURATION_S=10 bench/http_overhead.sh
#
# It writes its table into the "HTTP path" section of bench/RESULTS.md (RESULTS_FILE overrides),
# leaving the rest of the file alone. Installs wrk (Debian package) when missing. Every process it
# starts is stopped on exit; every run is bounded by `timeout`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=bench/common.sh
source "${SCRIPT_DIR}/common.sh"
CONCURRENCY="${CONCURRENCY:-1 8 32}"
readonly COMMAND_LINE="BUILD_DIR=${BUILD_DIR} CONCURRENCY=\"${CONCURRENCY}\" DURATION_S=${DURATION_S} bench/http_overhead.sh"
resolve_build_dir
readonly API_KEY="tollgate-bench-http-key"

command -v wrk >/dev/null || {
  echo "http_overhead.sh: installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || die "cannot install wrk"
}
bench_init

"${BUILD_DIR}/sim/tollgate-sim" --address 127.0.0.1:0 --http_address 127.0.0.1:0 --time_scale 0 \
  >"${WORK_DIR}/sim.out" 2>"${WORK_DIR}/sim.err" &
SIM_PID=$!
STARTED_PIDS+=("${SIM_PID}")
SIM_HTTP="$(wait_for_line "${WORK_DIR}/sim.out" '^tollgate-sim http listening on ' "${SIM_PID}" |
  awk '{print $NF}')" || die "tollgate-sim did not start: $(tail -n 5 "${WORK_DIR}/sim.err")"

cat >"${WORK_DIR}/tollgate.yaml" <<YAML
listeners: {grpc_address: "127.0.0.1:0", metrics_address: "127.0.0.1:0", http_address: "127.0.0.1:0"}
tenants: [{name: bench, api_key_sha256: ["$(printf %s "${API_KEY}" | sha256sum | cut -d' ' -f1)"]}]
backends: [{name: sim-http, kind: openai, base_url: "http://${SIM_HTTP}"}]
models: [{name: llama-3-8b, backend: sim-http, prices: {input_usd_per_mtok: 0.2, output_usd_per_mtok: 0.2}}]
YAML
start_tollgate "${WORK_DIR}/tollgate.yaml"
TOLLGATE_HTTP="$(sed -E 's/.*http=([^ ]+).*/\1/' <<<"${TOLLGATE_LINE}")"

# Distinct prompts (a counter) so no layer can short-cut repeats; 16 output tokens at most.
wrk_post_script /v1/chat/completions "'{\"model\":\"llama-3-8b\",\"max_tokens\":16,\"temperature\":0,\"stream\":STREAM,' ..
    '\"messages\":[{\"role\":\"user\",\"content\":\"Benchmark prompt number ' .. n .. '\"}]}'" \
  >"${WORK_DIR}/chat.lua"

# run TARGET CONNECTIONS STREAM: "p50_us p99_us requests non2xx".
run() {
  sed "s/STREAM/$3/" "${WORK_DIR}/chat.lua" >"${WORK_DIR}/run.lua"
  local out
  out="$(timeout $((DURATION_S + 30)) wrk -t1 -c"$2" -d"${DURATION_S}s" --latency \
    -s "${WORK_DIR}/run.lua" "http://$1")" || die "wrk failed against $1"
  local p50 p99 requests errors
  p50="$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"${out}")")"
  p99="$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"${out}")")"
  requests="$(awk '/requests in/ { print $1 }' <<<"${out}")"
  errors="$(awk '/Non-2xx or 3xx responses/ { print $NF }' <<<"${out}")"
  echo "${p50} ${p99} ${requests} ${errors:-0}"
}

ROWS=()
for stream in false true; do
  for c in ${CONCURRENCY}; do
    [[ "${stream}" == true && "${c}" != "${CONCURRENCY%% *}" ]] && continue  # one streaming row
    echo "concurrency ${c}, stream ${stream}: direct..."
    direct="$(run "${SIM_HTTP}" "${c}" "${stream}")" || exit 1
    read -r d50 d99 dn de <<<"${direct}"
    echo "concurrency ${c}, stream ${stream}: through tollgate..."
    before="$(cpu_ticks "${TOLLGATE_PID}")"
    proxied="$(run "${TOLLGATE_HTTP}" "${c}" "${stream}")" || exit 1
    read -r p50 p99 pn pe <<<"${proxied}"
    after="$(cpu_ticks "${TOLLGATE_PID}")"
    ROWS+=("$(awk -v c="${c}" -v s="${stream}" -v d50="${d50}" -v d99="${d99}" -v p50="${p50}" \
      -v p99="${p99}" -v dn="${dn}" -v pn="${pn}" -v t=$((after - before)) \
      -v hz="${CLOCK_TICKS_PER_S}" -v de="${de}" -v pe="${pe}" 'BEGIN {
        printf "| %s | %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f | %.1f | %s / %s |",
          c, s == "true" ? "stream" : "unary", d50, d99, p50, p99, p50 - d50, p99 - d99,
          dn / '"${DURATION_S}"', pn / '"${DURATION_S}"', (pn > 0 ? t * 1e6 / hz / pn : 0), de, pe }')")
    echo "  ${ROWS[-1]}"
  done
done

section="${WORK_DIR}/section.md"
{
  echo "<!-- http:begin (written by bench/http_overhead.sh) -->"
  echo "## HTTP path"
  echo
  echo "An OpenAI-compatible \`/v1/chat/completions\` call (16 output tokens, distinct prompts) made"
  echo "straight to \`tollgate-sim --time_scale 0\`'s HTTP API, and through Tollgate's HTTP ingress and"
  echo "its \`openai\` backend to the same simulator, with wrk closed loop (one thread, C connections)."
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: \`${COMMAND_LINE}\`"
  echo "- Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r); load average before/after: see the gRPC section's caveats"
  echo "- Source: revision $(git -C "${REPO_DIR}" rev-parse --short HEAD)"
  echo
  echo "Latencies in µs as p50 / p99 (wrk's histogram); added = proxied − direct; throughput in"
  echo "requests/s; CPU-µs/req is Tollgate's user + system time over the proxied run per request;"
  echo "errors are non-2xx responses, direct / proxied."
  echo
  echo "| connections | mode | direct p50 / p99 | proxied p50 / p99 | added p50 / p99 | throughput direct / proxied | tollgate CPU-µs/req | errors |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo "<!-- http:end -->"
} >"${section}"

replace_section "${RESULTS_FILE}" http "${section}"
cat "${section}"
echo "wrote ${RESULTS_FILE}"
