#include "proxy/batcher/usage_split.h"

#include <algorithm>
#include <numeric>

#include "absl/numeric/int128.h"

namespace tollgate {

std::vector<uint64_t> SplitProportionally(uint64_t total, absl::Span<const uint64_t> weights) {
  const size_t n = weights.size();
  std::vector<uint64_t> parts(n, 0);
  if (n == 0) return parts;
  absl::uint128 sum = 0;
  for (uint64_t w : weights) sum += w;
  if (sum == 0) {  // nothing to go by: evenly
    std::vector<uint64_t> even(n, 1);
    return SplitProportionally(total, even);
  }
  // Exact share of item i: total * w_i / sum, in 128 bits (both factors may be large).
  std::vector<absl::uint128> remainders(n);
  uint64_t given = 0;
  for (size_t i = 0; i < n; ++i) {
    const absl::uint128 product = absl::uint128(total) * weights[i];
    parts[i] = absl::Uint128Low64(product / sum);
    remainders[i] = product % sum;
    given += parts[i];
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
  // Fewer than n tokens are left over, since each floor loses less than one.
  for (size_t k = 0; given < total; ++k, ++given) ++parts[order[k]];
  return parts;
}

std::vector<v1::Usage> SplitUsage(const v1::Usage& call, absl::Span<const UsageWeights> items) {
  const size_t n = items.size();
  std::vector<uint64_t> input_weights(n), output_weights(n);
  for (size_t i = 0; i < n; ++i) {
    input_weights[i] = items[i].input;
    output_weights[i] = items[i].output;
  }
  const std::vector<uint64_t> input = SplitProportionally(call.input_tokens(), input_weights);
  const std::vector<uint64_t> output = SplitProportionally(call.output_tokens(), output_weights);
  // Subsets split by the parts that hold them, so that each stays within its holder. A backend
  // that reports a subset larger than its holder is clamped first.
  const uint64_t cached_total = std::min(call.cached_input_tokens(), call.input_tokens());
  const std::vector<uint64_t> cached = SplitProportionally(cached_total, input);
  std::vector<uint64_t> uncached(n);
  for (size_t i = 0; i < n; ++i) uncached[i] = input[i] - cached[i];
  const std::vector<uint64_t> cache_write = SplitProportionally(
      std::min(call.cache_write_input_tokens(), call.input_tokens() - cached_total), uncached);
  const std::vector<uint64_t> reasoning =
      SplitProportionally(std::min(call.reasoning_tokens(), call.output_tokens()), output);
  std::vector<v1::Usage> parts(n);
  for (size_t i = 0; i < n; ++i) {
    parts[i].set_input_tokens(input[i]);
    parts[i].set_cached_input_tokens(cached[i]);
    parts[i].set_cache_write_input_tokens(cache_write[i]);
    parts[i].set_output_tokens(output[i]);
    parts[i].set_reasoning_tokens(reasoning[i]);
    parts[i].set_source(call.source());
  }
  return parts;
}

}  // namespace tollgate
