// One generate request of tollgate-sim's HTTP API, served from the SimEngine: waits out the
// first-byte delay (on a DelayQueue, never on an io thread), then streams SSE or collects the
// whole answer, applies the request's faults and usage knobs, and cancels the engine request when
// the client goes away. Internal to tollgate_sim_http.
//
// Ownership: the call owns itself through the engine's callbacks and the delay queue; it ends
// after the engine's on_done. Thread safety: writer calls happen on one thread at a time (before
// Submit, then in the engine's callbacks, which never overlap for one request).
#pragma once

#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "proxy/http/server/http_server.h"
#include "sim/delay_queue.h"
#include "sim/engine.h"
#include "sim/http_encoders.h"
#include "sim/http_faults.h"
#include "tollgate/v1/inference.pb.h"

namespace tollgate::sim {

// REQUIRES: ValidateRequest(request).ok(); `faults.status` == 0 (answered by the caller).
// `engine` and `delays` must outlive the call (shut the HTTP server down before destroying them).
void StartGenerateCall(SimEngine* engine, DelayQueue* delays, v1::GenerateRequest request,
                       bool stream, const RequestFaults& faults,
                       std::unique_ptr<GenerateEncoder> encoder,
                       std::shared_ptr<http::ResponseWriter> writer);

// How the HTTP API's engine calls start: `on_client_gone` runs if the client goes away, `begin`
// once `first_byte_delay` has passed (on `delays`, never blocking an io thread; at once when there
// is no delay).
void StartAfterFirstByteDelay(http::ResponseWriter& writer, DelayQueue* delays,
                              absl::Duration first_byte_delay, std::function<void()> on_client_gone,
                              std::function<void()> begin);

// The engine's usage with the request's synthetic cache reads and reasoning tokens applied
// (each capped at the prompt and output size).
v1::Usage WithKnobs(v1::Usage usage, const RequestFaults& faults);

}  // namespace tollgate::sim
