// tollgate-cache-memory-bench: the memory an entry of the in-memory response cache really takes,
// next to what the cache charges for it (EntryChargeBytes, cache/response_cache.h), which is what
// max_bytes bounds and tollgate_cache_bytes reports.
//
//   tollgate-cache-memory-bench                  # every case, up to 100000 entries each
//   tollgate-cache-memory-bench --max_entries=20000 --payload_budget_bytes=20000000
//   tollgate-cache-memory-bench --smoke          # small counts: checks that it runs
//
// Each case runs in a child process of its own, so that it starts from a fresh heap. It builds N
// answers the way the pipeline stores one (proxy/cached_generate.cc: each streamed chunk appended
// as it came and the vector shrunk to fit, usage and cost set, a shared CachedResponse), inserts
// them under real cache keys into a cache large enough to keep them all, and reads the heap in use
// (mallinfo2) and the resident set (/proc/self/statm) before and after. Per entry: the growth
// divided by N.
//
// Cases: answers of 100 B, 1 KB and 10 KB, each as one chunk (a unary backend call), as 20-byte
// chunks, and as 4-byte chunks (one token per delta, as the simulator and most servers stream).
// N is the smaller of --max_entries and --payload_budget_bytes / payload.
//
// Exit status: 0 when every case ran, 1 otherwise.
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cache/cache_key.h"
#include "cache/response_cache.h"

ABSL_FLAG(int64_t, max_entries, 100000, "entries per case, at most");
ABSL_FLAG(int64_t, payload_budget_bytes, 100'000'000,
          "entries per case, at most this many bytes of chunk text in all");
ABSL_FLAG(bool, smoke, false, "1000 entries per case at most");

namespace tollgate {
namespace {

struct MemoryCase {
  int payload_bytes;
  int chunk_bytes;  // 0: one chunk
};

struct Usage {
  int64_t heap_bytes;      // allocated by malloc and not freed
  int64_t resident_bytes;  // the process's resident set
};

Usage MemoryInUse() {
  const struct mallinfo2 info = mallinfo2();
  int64_t pages = 0, resident_pages = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident_pages;
  return {static_cast<int64_t>(info.uordblks + info.hblkhd),
          resident_pages * static_cast<int64_t>(sysconf(_SC_PAGESIZE))};
}

// The chunk texts of one answer.
std::vector<std::string> Chunks(const MemoryCase& c) {
  std::string text;
  while (static_cast<int>(text.size()) < c.payload_bytes) text += "Lorem ipsum dolor sit amet. ";
  text.resize(c.payload_bytes);
  if (c.chunk_bytes == 0) return {text};
  std::vector<std::string> chunks;
  for (size_t at = 0; at < text.size(); at += c.chunk_bytes) {
    chunks.push_back(text.substr(at, c.chunk_bytes));
  }
  return chunks;
}

// Runs one case and prints its table row. In a child process.
void MeasureCase(const MemoryCase& c, int64_t entries) {
  std::unique_ptr<ResponseCache> cache =
      NewResponseCache({.capacity_bytes = uint64_t{1} << 40, .max_entry_bytes = uint64_t{1} << 30});
  const std::vector<std::string> chunks = Chunks(c);
  v1::GenerateRequest request;
  request.set_model("llama-3-8b");
  request.mutable_params()->set_temperature(0);
  auto* message = request.mutable_chat()->add_messages();
  message->set_role("user");

  // The first key initializes OpenSSL, and the first clock read absl's clock: not entries' memory.
  CacheKey("bench", "llama-3-8b", request);
  absl::Now();
  const Usage before = MemoryInUse();
  for (int64_t i = 0; i < entries; ++i) {
    message->set_content(absl::StrCat("Benchmark prompt number ", i));
    auto answer = std::make_shared<CachedResponse>();
    // Appended one by one as the chunks streamed in, then shrunk, like the pipeline's FlightFeeder.
    for (const std::string& chunk : chunks) answer->chunks.push_back(chunk);
    answer->chunks.shrink_to_fit();
    answer->finish_reason = v1::FINISH_REASON_STOP;
    answer->usage.set_input_tokens(12);
    answer->usage.set_output_tokens(chunks.size());
    answer->usage.set_source(v1::USAGE_SOURCE_REPORTED);
    answer->cost.set_input_nano_usd(2400);
    answer->cost.set_output_nano_usd(200 * chunks.size());
    answer->cost.set_total_nano_usd(2400 + 200 * chunks.size());
    answer->stored = absl::Now();
    cache->Insert(CacheKey("bench", "llama-3-8b", request), std::move(answer));
  }
  const Usage after = MemoryInUse();

  const ResponseCacheStats stats = cache->Stats();
  if (static_cast<int64_t>(stats.entries) != entries) {
    std::cerr << "expected " << entries << " entries, the cache holds " << stats.entries << "\n";
    _exit(1);
  }
  const double n = static_cast<double>(entries);
  const double charged = static_cast<double>(stats.bytes) / n;
  const double heap = static_cast<double>(after.heap_bytes - before.heap_bytes) / n;
  const double resident = static_cast<double>(after.resident_bytes - before.resident_bytes) / n;
  const std::string shape =
      c.chunk_bytes == 0 ? "1 chunk" : absl::StrCat(chunks.size(), " × ", c.chunk_bytes, " B");
  std::cout << absl::StrFormat("| %d | %s | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |\n",
                               c.payload_bytes, shape, entries, charged, heap, resident,
                               resident - charged, heap / charged, resident / charged)
            << std::flush;
}

}  // namespace
}  // namespace tollgate

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const int64_t max_entries = smoke ? 1000 : absl::GetFlag(FLAGS_max_entries);
  const int64_t budget = smoke ? 1'000'000 : absl::GetFlag(FLAGS_payload_budget_bytes);

  std::cout << "| payload B | chunks | entries | charged B/entry | heap B/entry | RSS B/entry | "
               "uncharged B/entry (RSS − charged) | heap ÷ charged | RSS ÷ charged |\n"
               "|---|---|---|---|---|---|---|---|---|\n"
            << std::flush;
  int status = 0;
  for (const int payload : {100, 1000, 10000}) {
    for (const int chunk : {0, 20, 4}) {
      const int64_t entries = std::max<int64_t>(1, std::min(max_entries, budget / payload));
      const pid_t child = fork();
      if (child < 0) {
        std::perror("fork");
        return 1;
      }
      if (child == 0) {
        tollgate::MeasureCase({payload, chunk}, entries);
        _exit(0);
      }
      int wait_status = 0;
      if (waitpid(child, &wait_status, 0) != child || !WIFEXITED(wait_status) ||
          WEXITSTATUS(wait_status) != 0) {
        std::cerr << "case " << payload << " B / " << chunk << " B chunks failed\n";
        status = 1;
      }
    }
  }
  return status;
}
