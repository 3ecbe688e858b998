// Replay of a cached answer as the responses a client receives.
//
// A cached answer keeps the chunks it was streamed in, so either RPC can be served from it: a
// unary request gets one response with the whole text, a stream request one delta per stored chunk
// (the original boundaries) and then a final message with the finish reason and usage. A cached
// unary answer, being one chunk, replays as a one-delta stream.
//
// The replayed messages carry cache_status HIT and no cost (a hit is charged $0; the stored cost is
// what it saved); the caller fills backend and request_id. Pacing the deltas (e.g. to mimic the
// original inter-token timing) is out of scope: they are produced all at once.
//
// Pure functions; thread-safe.
#pragma once

#include <vector>

#include "cache/response_cache.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate {

v1::GenerateResponse ReplayUnary(const CachedResponse& cached);

// Stored chunks in order (finish reason unspecified), then one empty-text message with the finish
// reason and usage.
std::vector<v1::GenerateResponse> ReplayStream(const CachedResponse& cached);

}  // namespace tollgate
