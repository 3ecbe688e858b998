#include "cache/redis_tier.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tollgate/v1/cache_entry.pb.h"

namespace tollgate {
namespace {

constexpr std::string_view kMagic = "TGCE";
constexpr size_t kHeaderBytes = 4 + 1 + 4;  // magic, version, payload length

absl::Status Undecodable(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("cached value: ", what));
}

// Shared with the callbacks in flight, which may outlive the tier.
struct TierState {
  explicit TierState(RedisCacheTierOptions options) : options(std::move(options)) {}

  void CountDecodeError() {
    ++decode_errors;
    if (options.metrics != nullptr) options.metrics->CountError(RedisErrorOp::kDecode);
  }

  const RedisCacheTierOptions options;
  std::atomic<uint64_t> hits = 0;
  std::atomic<uint64_t> misses = 0;
  std::atomic<uint64_t> errors = 0;
  std::atomic<uint64_t> decode_errors = 0;
  std::atomic<uint64_t> puts = 0;
  std::atomic<uint64_t> rejected = 0;
};

class RedisCacheTierImpl final : public RedisCacheTier {
 public:
  RedisCacheTierImpl(RedisClient* client, RedisCacheTierOptions options)
      : client_(client),
        state_(std::make_shared<TierState>(std::move(options))),
        ttl_ms_(std::max<int64_t>(absl::ToInt64Milliseconds(state_->options.ttl), 1)) {}

  void Get(const std::string& key, GetCallback done) override {
    client_->Command({"GET", state_->options.key_prefix + key},
                     [state = state_, done = std::move(done)](absl::StatusOr<RedisReply> reply) {
                       std::shared_ptr<const CachedResponse> hit;
                       if (!reply.ok() || reply->is_error()) {
                         ++state->errors;
                       } else if (reply->type == RedisReply::Type::kString) {
                         absl::StatusOr<CachedResponse> decoded = DecodeCachedResponse(reply->str);
                         if (decoded.ok()) {
                           hit = std::make_shared<const CachedResponse>(*std::move(decoded));
                         } else {
                           state->CountDecodeError();
                         }
                       } else if (reply->type != RedisReply::Type::kNil) {
                         state->CountDecodeError();  // not a value this tier stores
                       }
                       ++(hit != nullptr ? state->hits : state->misses);
                       done(std::move(hit));
                     });
  }

  bool Put(const std::string& key, const CachedResponse& response) override {
    if (key.empty() || response.finish_reason == v1::FINISH_REASON_UNSPECIFIED) {
      ++state_->rejected;
      return false;
    }
    std::string value = EncodeCachedResponse(response);
    if (value.size() > state_->options.max_entry_bytes) {
      ++state_->rejected;
      return false;
    }
    ++state_->puts;
    client_->Command(
        {"SET", state_->options.key_prefix + key, std::move(value), "PX", absl::StrCat(ttl_ms_)},
        [state = state_](absl::StatusOr<RedisReply> reply) {
          if (!reply.ok() || reply->is_error()) ++state->errors;
        });
    return true;
  }

  RedisCacheTierStats Stats() const override {
    return {state_->hits,          state_->misses, state_->errors,
            state_->decode_errors, state_->puts,   state_->rejected};
  }

 private:
  RedisClient* const client_;
  const std::shared_ptr<TierState> state_;
  const int64_t ttl_ms_;
};

}  // namespace

std::unique_ptr<RedisCacheTier> NewRedisCacheTier(RedisClient* client,
                                                  RedisCacheTierOptions options) {
  return std::make_unique<RedisCacheTierImpl>(client, std::move(options));
}

std::string EncodeCachedResponse(const CachedResponse& response) {
  v1::CacheEntry entry;
  for (const std::string& chunk : response.chunks) entry.add_chunks(chunk);
  entry.set_finish_reason(response.finish_reason);
  *entry.mutable_usage() = response.usage;
  *entry.mutable_cost() = response.cost;
  entry.set_stored_unix_micros(absl::ToUnixMicros(response.stored));
  const std::string payload = entry.SerializeAsString();
  const auto length = static_cast<uint32_t>(payload.size());
  std::string value;
  value.reserve(kHeaderBytes + payload.size());
  value.append(kMagic);
  value.push_back(static_cast<char>(kCacheEntryFormatVersion));
  for (int shift = 0; shift < 32; shift += 8) value.push_back(static_cast<char>(length >> shift));
  value.append(payload);
  return value;
}

absl::StatusOr<CachedResponse> DecodeCachedResponse(std::string_view value) {
  if (value.size() < kHeaderBytes) return Undecodable("shorter than its header");
  if (value.substr(0, kMagic.size()) != kMagic) return Undecodable("not a cache entry");
  const auto version = static_cast<uint8_t>(value[kMagic.size()]);
  if (version != kCacheEntryFormatVersion) {
    return Undecodable(
        absl::StrCat("format version ", version, ", this build reads ", kCacheEntryFormatVersion));
  }
  uint32_t length = 0;
  for (int i = 3; i >= 0; --i) {
    length = (length << 8) | static_cast<uint8_t>(value[kMagic.size() + 1 + i]);
  }
  if (value.size() - kHeaderBytes != length) {
    return Undecodable(
        absl::StrCat(value.size() - kHeaderBytes, " payload bytes, the header says ", length));
  }
  v1::CacheEntry entry;
  if (!entry.ParseFromArray(value.data() + kHeaderBytes, static_cast<int>(length))) {
    return Undecodable("payload does not parse");
  }
  if (entry.finish_reason() == v1::FINISH_REASON_UNSPECIFIED ||
      !v1::FinishReason_IsValid(entry.finish_reason())) {
    return Undecodable("no known finish reason");
  }
  CachedResponse response;
  response.chunks.assign(entry.chunks().begin(), entry.chunks().end());
  response.finish_reason = entry.finish_reason();
  response.usage = entry.usage();
  response.cost = entry.cost();
  response.stored = absl::FromUnixMicros(entry.stored_unix_micros());
  return response;
}

}  // namespace tollgate
