#include "cache/replay.h"

namespace tollgate {

v1::GenerateResponse ReplayUnary(const CachedResponse& cached) {
  v1::GenerateResponse response;
  std::string* text = response.mutable_text();
  size_t size = 0;
  for (const std::string& chunk : cached.chunks) size += chunk.size();
  text->reserve(size);
  for (const std::string& chunk : cached.chunks) text->append(chunk);
  response.set_finish_reason(cached.finish_reason);
  *response.mutable_usage() = cached.usage;
  response.set_cache_status(v1::CACHE_STATUS_HIT);
  return response;
}

std::vector<v1::GenerateResponse> ReplayStream(const CachedResponse& cached) {
  std::vector<v1::GenerateResponse> responses;
  responses.reserve(cached.chunks.size() + 1);
  for (const std::string& chunk : cached.chunks) {
    v1::GenerateResponse& delta = responses.emplace_back();
    delta.set_text(chunk);
    delta.set_cache_status(v1::CACHE_STATUS_HIT);
  }
  v1::GenerateResponse& last = responses.emplace_back();
  last.set_finish_reason(cached.finish_reason);
  *last.mutable_usage() = cached.usage;
  last.set_cache_status(v1::CACHE_STATUS_HIT);
  return responses;
}

}  // namespace tollgate
