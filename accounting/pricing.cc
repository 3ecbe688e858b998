#include "accounting/pricing.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tollgate {

absl::StatusOr<int64_t> UsdPerMtokToNano(double usd_per_mtok) {
  if (!std::isfinite(usd_per_mtok) || usd_per_mtok < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("price must be a finite number >= 0, got ", usd_per_mtok));
  }
  if (usd_per_mtok > 1e6) {
    return absl::InvalidArgumentError(
        absl::StrCat("price above $1,000,000 per million tokens: ", usd_per_mtok));
  }
  return std::llround(usd_per_mtok * 1e9);
}

int64_t TokensCostNanoUsd(uint64_t tokens, int64_t nano_usd_per_mtok) {
  const __int128 product = static_cast<__int128>(tokens) * nano_usd_per_mtok;
  const __int128 cost = (product + 500'000) / 1'000'000;
  // Saturate rather than wrap: $9.2 billion in one request is far past any real bill.
  return cost > std::numeric_limits<int64_t>::max() ? std::numeric_limits<int64_t>::max()
                                                    : static_cast<int64_t>(cost);
}

const TokenPrices& PricesForInput(const TokenPrices& prices, uint64_t input_tokens) {
  return prices.long_context != nullptr && prices.long_context_above_input_tokens > 0 &&
                 input_tokens > prices.long_context_above_input_tokens
             ? *prices.long_context
             : prices;
}

std::string FormatNanoUsd(int64_t nano_usd) {
  const char* sign = nano_usd < 0 ? "-" : "";
  const uint64_t magnitude = nano_usd < 0 ? -static_cast<uint64_t>(nano_usd) : nano_usd;
  return absl::StrFormat("%s%d.%09d", sign, magnitude / 1'000'000'000, magnitude % 1'000'000'000);
}

v1::Cost PriceUsage(const TokenPrices& base, const v1::Usage& usage, bool batch) {
  const TokenPrices& prices = PricesForInput(base, usage.input_tokens());
  // The batch discount comes off the price per token, as providers bill it; half of a whole
  // number of nano-USD per million tokens is exact.
  const int64_t keep_ppm = batch ? 1'000'000 - base.batch_discount_ppm : 1'000'000;
  const auto price = [keep_ppm](int64_t nano_usd_per_mtok) {
    return static_cast<int64_t>((static_cast<__int128>(nano_usd_per_mtok) * keep_ppm + 500'000) /
                                1'000'000);
  };
  const uint64_t cached = std::min(usage.cached_input_tokens(), usage.input_tokens());
  const uint64_t written =
      std::min(usage.cache_write_input_tokens(), usage.input_tokens() - cached);
  const uint64_t reasoning = std::min(usage.reasoning_tokens(), usage.output_tokens());
  v1::Cost cost;
  cost.set_input_nano_usd(TokensCostNanoUsd(usage.input_tokens() - cached - written,
                                            price(prices.input_nano_usd_per_mtok)));
  cost.set_cached_input_nano_usd(
      TokensCostNanoUsd(cached, price(prices.cached_input_nano_usd_per_mtok)));
  cost.set_cache_write_nano_usd(
      TokensCostNanoUsd(written, price(prices.cache_write_nano_usd_per_mtok)));
  cost.set_output_nano_usd(
      TokensCostNanoUsd(usage.output_tokens() - reasoning, price(prices.output_nano_usd_per_mtok)));
  cost.set_reasoning_nano_usd(
      TokensCostNanoUsd(reasoning, price(prices.reasoning_nano_usd_per_mtok)));
  cost.set_total_nano_usd(cost.input_nano_usd() + cost.cached_input_nano_usd() +
                          cost.cache_write_nano_usd() + cost.output_nano_usd() +
                          cost.reasoning_nano_usd());
  return cost;
}

}  // namespace tollgate
