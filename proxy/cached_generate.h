// Generation through the response cache (issue 6): a hit is replayed from the in-memory tier or
// the shared one; a miss joins the coalescer, where the first of identical requests in flight (the
// leader) calls the backend and the others (followers) share its answer; a complete answer is
// stored for the next ones.
//
// Accounting:
// - the leader is charged and recorded like any backend call (cache status miss, or bypass when
//   its client asked to skip the cache);
// - a hit or a follower pays hit_cost_fraction of what the backend charged for the answer (default
//   0), is recorded as hit or coalesced, and the rest counts as saved
//   (tollgate_cache_saved_usd_total and the ledger's saved_nano_usd);
// - a miss reserves its worst case on the budgets before it joins, so a follower is held to its
//   budget like a leader; a hit reserves only its charge.
//
// The leader's call streams from the backend whatever its client asked, so that the answer keeps
// its chunk boundaries for stream replay, and a unary and a stream request can share it. If the
// leader's client goes away, the call goes on while any follower still wants it. Internal to
// proxy/.
#pragma once

#include <memory>

#include "proxy/pipeline.h"
#include "proxy/request_accounting.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::pipeline_internal {

// The backend name that answers served from the cache carry (response, ledger).
inline constexpr absl::string_view kCacheBackend = "cache";

// Whether an admitted generation goes through the cache: the snapshot has one and the model's
// policy admits the request (deterministic ones by default).
bool UsesCache(const Admission& a, const v1::GenerateRequest& request);

// REQUIRES: UsesCache(a, request). Same contract as Pipeline::Generate.
std::shared_ptr<RequestHandle> GenerateThroughCache(Admission a, const v1::GenerateRequest& request,
                                                    bool stream, GenerateSink* sink);

// What a hit or a follower is charged: `fraction` of each component of what the backend charged
// for the answer, rounded to the nano-USD; the total is the sum of the components.
v1::Cost HitCost(const v1::Cost& paid, double fraction);

}  // namespace tollgate::pipeline_internal
