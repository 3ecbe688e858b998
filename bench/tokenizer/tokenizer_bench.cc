// tollgate-tokenizer-bench: tokenizes the parity corpus single-threaded with Tollgate's tokenizer
// (Encode and Count) and, in the same run, with its reference npm package under node (`tiktoken`
// for cl100k_base and o200k_base, llama3-tokenizer-js, llama-tokenizer-js, mistral-tokenizer-js),
// and prints tokens per second and their ratio, plus the memory each loaded vocabulary holds.
//
//   tollgate-tokenizer-bench [--encoding NAME|all] [--mb 4] [--rounds 5]
//
// Each encoding runs on the parity corpus, then on the same mix without very long words, whose
// quadratic merging in tiktoken would otherwise dominate the reference's time.
//
// Needs `scripts/fetch_vocab` (vocabularies and the npm package) and node.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "accounting/tokenizer/registry.h"
#include "tests/accounting/tokenizer/corpus.h"

namespace {

using Clock = std::chrono::steady_clock;

long ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// Best wall time of `rounds` runs of fn over all documents; *tokens gets the total.
template <typename Fn>
double BestSeconds(int rounds, const std::vector<std::string>& docs, size_t* tokens, Fn fn) {
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    size_t total = 0;
    auto start = Clock::now();
    for (const std::string& doc : docs) total += fn(doc);
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
    *tokens = total;
  }
  return best;
}

std::string VocabDir() {
  const char* env = std::getenv("TOLLGATE_VOCAB_DIR");
  return env != nullptr && *env != '\0' ? env
                                        : std::string(TOLLGATE_SOURCE_DIR) + "/.cache/tokenizer";
}

const char* ReferencePackage(const std::string& encoding) {
  if (encoding == "llama3") return "llama3-tokenizer-js";
  if (encoding == "llama2") return "llama-tokenizer-js";
  if (encoding == "mistral") return "mistral-tokenizer-js";
  return "tiktoken (wasm)";
}

// Bytes malloc has handed out, the large blocks it maps on their own included.
size_t HeapBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Memory one loaded vocabulary holds, measured in this (fresh) process: heap bytes in use, and the
// growth of the resident set once the loader's temporaries are given back to the system.
int MeasureMemory(const std::string& encoding) {
  malloc_trim(0);
  size_t heap_before = HeapBytes();
  long rss_before = ResidentBytes();
  auto loaded = tollgate::LoadTokenizer(encoding, VocabDir());
  if (!loaded.ok()) return 1;
  malloc_trim(0);
  std::printf("  vocabulary in memory:       %.1f MB heap, %.1f MB resident\n",
              (HeapBytes() - heap_before) / 1e6, (ResidentBytes() - rss_before) / 1e6);
  return 0;
}

int Run(const std::string& encoding, double mb, int rounds, bool long_words) {
  auto loaded = tollgate::LoadTokenizer(encoding, VocabDir());
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  const tollgate::Tokenizer& tok = **loaded;

  std::vector<std::string> docs =
      tollgate::testing::GenerateCorpus(static_cast<size_t>(mb * 1e6), 20261121, long_words);
  size_t bytes = 0;
  for (const std::string& doc : docs) bytes += doc.size();
  std::string input = "/tmp/tollgate_tokenizer_bench_" + std::to_string(getpid()) + ".jsonl";
  {
    std::ofstream out(input, std::ios::binary);
    for (const std::string& doc : docs) out << tollgate::testing::JsonString(doc) << "\n";
  }

  size_t encode_tokens = 0, count_tokens = 0;
  double encode_s = BestSeconds(rounds, docs, &encode_tokens,
                                [&](const std::string& d) { return tok.Encode(d).size(); });
  double count_s =
      BestSeconds(rounds, docs, &count_tokens, [&](const std::string& d) { return tok.Count(d); });

  std::string command = "node '" + std::string(TOLLGATE_SOURCE_DIR) +
                        "/bench/tokenizer/reference_bench.mjs' " + encoding + " '" + input + "' " +
                        std::to_string(rounds);
  FILE* pipe = popen(command.c_str(), "r");
  size_t ref_tokens = 0;
  double ref_s = 0;
  if (pipe == nullptr || std::fscanf(pipe, "tokens=%zu seconds=%lf", &ref_tokens, &ref_s) != 2) {
    std::fprintf(stderr, "could not run the reference: %s\n", command.c_str());
    if (pipe != nullptr) pclose(pipe);
    std::remove(input.c_str());
    return 1;
  }
  pclose(pipe);
  std::remove(input.c_str());

  auto rate = [](size_t tokens, double s) { return tokens / s / 1e6; };
  std::printf("%s, %s: %zu documents, %.2f MB, %zu tokens (reference %zu), best of %d rounds\n",
              encoding.c_str(), long_words ? "mixed corpus" : "mixed corpus without long words",
              docs.size(), bytes / 1e6, encode_tokens, ref_tokens, rounds);
  std::printf("  npm %-23s %7.2f Mtok/s  %7.2f MB/s\n",
              (std::string(ReferencePackage(encoding)) + ":").c_str(), rate(ref_tokens, ref_s),
              bytes / ref_s / 1e6);
  std::printf("  tollgate Encode:            %7.2f Mtok/s  %7.2f MB/s  %.2fx the reference\n",
              rate(encode_tokens, encode_s), bytes / encode_s / 1e6, ref_s / encode_s);
  std::printf("  tollgate Count:             %7.2f Mtok/s  %7.2f MB/s  %.2fx the reference\n",
              rate(count_tokens, count_s), bytes / count_s / 1e6, ref_s / count_s);
  return encode_tokens == ref_tokens && count_tokens == ref_tokens ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string encoding = "all";
  double mb = 4;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--memory-of") return MeasureMemory(argv[i + 1]);
    if (flag == "--encoding") {
      encoding = argv[i + 1];
    } else if (flag == "--mb") {
      mb = std::atof(argv[i + 1]);
    } else if (flag == "--rounds") {
      rounds = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: %s [--encoding NAME|all] [--mb N] [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  int rc = 0;
  for (std::string_view view : tollgate::TokenizerNames()) {
    const std::string name(view);
    if (encoding != "all" && encoding != name) continue;
    for (bool long_words : {true, false}) rc = std::max(rc, Run(name, mb, rounds, long_words));
    std::fflush(stdout);
    std::string command = std::string("'") + argv[0] + "' --memory-of " + name;
    rc = std::max(rc, std::system(command.c_str()) == 0 ? 0 : 1);
  }
  return rc;
}
