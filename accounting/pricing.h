// Token prices and the exact arithmetic that turns usage into nano-USD.
//
// Prices are held as integer nano-USD per million tokens, so a price written in the config with up
// to nine decimals (USD per million tokens) is represented exactly. A cost component is
// tokens × price / 1e6, computed in 128-bit integers and rounded half up to a whole nano-USD; for
// every price that is a whole number of nano-USD per token (all current list prices) no rounding
// happens at all. Pure functions; thread-compatible value types.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

struct TokenPrices {
  int64_t input_nano_usd_per_mtok = 0;
  int64_t cached_input_nano_usd_per_mtok = 0;  // input read from a prompt cache
  int64_t cache_write_nano_usd_per_mtok = 0;   // input written to a prompt cache (Anthropic)
  int64_t output_nano_usd_per_mtok = 0;
  int64_t reasoning_nano_usd_per_mtok = 0;
  // Long-context tier: a request with more input tokens than this is priced entirely at
  // `long_context` (as Anthropic and Google bill prompts above 200k tokens). 0: no tier.
  uint64_t long_context_above_input_tokens = 0;
  std::shared_ptr<const TokenPrices> long_context;
  // Parts per million taken off every price for batch requests (OpenAI's Batch API and flex
  // processing, Anthropic's Message Batches: 500000, half price).
  int64_t batch_discount_ppm = 0;
};

// Converts a configured USD-per-million-tokens price. Errors on negative, non-finite, or prices
// above $1,000,000 per million tokens.
absl::StatusOr<int64_t> UsdPerMtokToNano(double usd_per_mtok);

// nano-USD for `tokens` at `nano_usd_per_mtok`, rounded half up; saturates at INT64_MAX.
int64_t TokensCostNanoUsd(uint64_t tokens, int64_t nano_usd_per_mtok);

// The prices a request with `input_tokens` of prompt pays: the long-context tier's above its
// threshold, else `prices` itself.
const TokenPrices& PricesForInput(const TokenPrices& prices, uint64_t input_tokens);

// Prices normalised usage (see tollgate.v1.Usage): uncached input, cached input, cache-write input,
// non-reasoning output and reasoning output each at their own price, at the long-context tier's
// prices when the input is above its threshold, and with the batch discount off every price when
// `batch`. Counts that exceed their totals (cached + cache write > input) are clamped so that no
// component is negative.
v1::Cost PriceUsage(const TokenPrices& prices, const v1::Usage& usage, bool batch = false);

inline double NanoUsdToUsd(int64_t nano_usd) { return static_cast<double>(nano_usd) * 1e-9; }

// Exact decimal dollars, nine decimals: 1234567 → "0.001234567", -5 → "-0.000000005".
std::string FormatNanoUsd(int64_t nano_usd);

}  // namespace tollgate
