// Splitting one batched backend call's usage among the requests that shared it, so that each
// request is charged its part and the parts add up exactly to what the backend reported.
//
//   std::vector<v1::Usage> parts = SplitUsage(call_usage, {{.input = 12, .output = 30},
//                                                           {.input = 3, .output = 0}});
//
// Each count is split in proportion to a weight with largest-remainder rounding: every part gets
// the floor of its exact share, and the tokens left over go one each to the largest fractional
// remainders (ties to the earlier item). So the parts always sum to the total, and no part is
// more than one token from its exact share.
//
// Which weights: input tokens by each item's counted prompt tokens; output tokens by each item's
// own output (per-choice usage when the backend reports it, else its text counted with the
// model's tokenizer). The subsets are split by the parts of what holds them, so they stay subsets
// item by item: cached input by the input parts, cache writes by the uncached input parts,
// reasoning by the output parts. When every weight of a count is zero it is split evenly.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

// `total` in parts proportional to `weights` (largest remainder; even when all are zero). The
// result has weights.size() parts summing to `total`; empty for no weights.
std::vector<uint64_t> SplitProportionally(uint64_t total, absl::Span<const uint64_t> weights);

// What one item of a batch weighs in the split.
struct UsageWeights {
  uint64_t input = 0;   // its prompt's counted tokens
  uint64_t output = 0;  // its output tokens, counted or reported per choice
};

// The call's usage in one part per item; each part keeps the call's source.
std::vector<v1::Usage> SplitUsage(const v1::Usage& call, absl::Span<const UsageWeights> items);

}  // namespace tollgate
