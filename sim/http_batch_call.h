// One batched /v1/completions request of tollgate-sim's HTTP API (a prompt array, not streamed),
// served from the SimEngine as one SubmitBatch: independent requests in continuous mode, one call
// in static mode. The answer has one choice per prompt ("index" = its position) and one usage for
// the whole call, the sums over the prompts with the request's usage knobs applied to the sums, as
// OpenAI reports it. A failed prompt fails the request with its status (the others are
// cancelled). Internal to tollgate_sim_http.
//
// Ownership: the call owns itself through the engine's callbacks and the delay queue; it ends
// after the last prompt's on_done. Thread-safe: its state is guarded by its own mutex, and the
// writer is answered once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/http/server/http_server.h"
#include "sim/delay_queue.h"
#include "sim/engine.h"
#include "sim/http_faults.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::sim {

// REQUIRES: requests.size() >= 1, each passes ValidateRequest, all name one model;
// `faults.status` == 0 (answered by the caller). `engine` and `delays` must outlive the call.
void StartBatchCompletionCall(SimEngine* engine, DelayQueue* delays,
                              std::vector<v1::GenerateRequest> requests,
                              const RequestFaults& faults, std::string id, int64_t created,
                              std::shared_ptr<http::ResponseWriter> writer);

}  // namespace tollgate::sim
